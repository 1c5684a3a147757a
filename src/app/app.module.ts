import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { type ArgumentMetadata, DynamicModule, Module, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { GraphQLModule } from '@nestjs/graphql';
import type { ValidationError } from 'class-validator';
import { GraphQLError, parse, type DocumentNode, type ExecutionResult, type ValidationRule } from 'graphql';
import type { BerthConfig } from '../config/config';
import { ConfigModule } from '../config/config.module';
import { InfraModule } from '../database/infra.module';
import { ApiKeysService } from '../auth/api-keys.service';
import { AuthGuard, bearer } from '../auth/auth.guard';
import { BerthError, ErrorCode } from '../common/errors';
import { HttpErrorFilter } from '../common/http-error.filter';
import { formatGraphQLError } from '../common/graphql-errors';
import { queryLimitErrors, queryLimits } from '../common/graphql-limits';
import { assertSaneInput } from '../common/sane-input';
import { HealthController } from '../health/health.controller';
import { TenantsController } from '../tenants/tenants.controller';
import { TenantsResolver } from '../tenants/tenants.resolver';
import { TenantsService } from '../tenants/tenants.service';
import { TenantDeletionService } from '../tenants/tenant-deletion.service';
import { JobsService } from '../jobs/jobs.service';
import { SiteWorker } from '../jobs/site.worker';
import { SitesController } from '../sites/sites.controller';
import { SitesResolver } from '../sites/sites.resolver';
import { SitesService } from '../sites/sites.service';
import { SiteRunner } from '../sites/site-runner.service';
import { EventFeedService } from '../events/event-feed.service';
import { EventsController } from '../events/events.controller';
import { EventsResolver } from '../events/events.resolver';
import { WebhooksService } from '../notifications/webhooks.service';
import { parseNetworks, WebhookTargetPolicy } from '../notifications/webhook-target';
import { WebhooksController } from '../notifications/webhooks.controller';
import { WebhooksResolver } from '../notifications/webhooks.resolver';
import { NotifyWorker } from '../notifications/notify.worker';
import { MonitorService } from '../monitor/monitor.service';
import { SiteHealthService } from '../monitor/site-health.service';
import { DockerEventsService } from '../monitor/docker-events.service';
import { ReconcilerService } from '../reconcile/reconciler.service';

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => [
    ...Object.values(e.constraints ?? {}).map((m) => (prefix ? `${prefix}.${m}` : m)),
    ...flatten(e.children ?? [], prefix ? `${prefix}.${e.property}` : e.property),
  ]);
}

/**
 * Over HTTP a subscription would run its resolve functions once with no event and no
 * authenticated principal: subscriptions are served over graphql-ws only.
 */
const noSubscriptionsOverHttp: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation === 'subscription') {
      context.reportError(
        new GraphQLError('Subscriptions are served over graphql-ws on /graphql, not over HTTP', {
          nodes: [node],
          extensions: { code: ErrorCode.VALIDATION_FAILED },
        }),
      );
    }
  },
});

/** class-validator for every DTO, after a bounded check that the input is storable at all. */
class InputPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    assertSaneInput(value);
    return super.transform(value, metadata);
  }
}

export const validationPipe = new InputPipe({
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  exceptionFactory: (errors) => {
    const messages = flatten(errors);
    return new BerthError(ErrorCode.VALIDATION_FAILED, messages.join('; '), { fields: messages });
  },
});

@Module({})
export class AppModule {
  static forConfig(config: BerthConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forConfig(config),
        InfraModule,
        GraphQLModule.forRootAsync<ApolloDriverConfig>({
          driver: ApolloDriver,
          inject: [ApiKeysService],
          useFactory: (keys: ApiKeysService) => ({
            autoSchemaFile: true,
            sortSchema: true,
            path: '/graphql',
            introspection: true,
            formatError: formatGraphQLError,
            validationRules: [queryLimits(config.BERTH_GRAPHQL_MAX_DEPTH, config.BERTH_GRAPHQL_MAX_COST), noSubscriptionsOverHttp],
            context: ({ req, extra }: { req?: unknown; extra?: { principal?: unknown } }) =>
              req ? { req } : { principal: extra?.principal },
            subscriptions: {
              'graphql-ws': {
                path: '/graphql',
                onConnect: async (ctx: { connectionParams?: Record<string, unknown>; extra: unknown }) => {
                  const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
                  const extra = ctx.extra as { principal?: unknown; socket?: { close(code: number, reason: string): void } };
                  extra.principal = await keys.authenticate(bearer(typeof raw === 'string' ? raw : undefined)).catch(() => undefined);
                  // 4401 (graphql-ws' Unauthorized) names the cause; returning false alone would close with 4403 Forbidden.
                  if (!extra.principal) extra.socket?.close(4401, ErrorCode.UNAUTHENTICATED);
                  return Boolean(extra.principal);
                },
                // graphql-ws neither applies Apollo's validation rules nor survives a parse error
                // (it closes the connection with 4500): parse and check the limits here.
                onSubscribe: (_ctx: unknown, _id: unknown, payload: { query: string }) => {
                  let document: DocumentNode;
                  try {
                    document = parse(payload.query);
                  } catch (e) {
                    return [
                      e instanceof GraphQLError
                        ? e
                        : new GraphQLError('The query could not be parsed', { extensions: { code: ErrorCode.VALIDATION_FAILED } }),
                    ];
                  }
                  const errors = queryLimitErrors(document, config.BERTH_GRAPHQL_MAX_DEPTH, config.BERTH_GRAPHQL_MAX_COST);
                  return errors.length ? errors : undefined;
                },
                // graphql-ws does not go through Apollo's formatError: map errors the same way.
                onNext: (_ctx: unknown, _id: unknown, _payload: unknown, _args: unknown, result: ExecutionResult) =>
                  result.errors
                    ? ({ ...result, errors: result.errors.map((e) => formatGraphQLError(e.toJSON(), e)) } as unknown as ExecutionResult)
                    : result,
                onError: (_ctx: unknown, _id: unknown, _payload: unknown, errors: readonly GraphQLError[]) =>
                  errors.map((e) => formatGraphQLError(e.toJSON(), e)) as unknown as readonly GraphQLError[],
              },
            },
          }),
          imports: [AuthModule],
        }),
        AuthModule,
      ],
      controllers: [HealthController, TenantsController, SitesController, EventsController, WebhooksController],
      providers: [
        TenantsService,
        TenantsResolver,
        TenantDeletionService,
        JobsService,
        SitesService,
        SitesResolver,
        SiteRunner,
        SiteWorker,
        EventFeedService,
        EventsResolver,
        WebhooksService,
        WebhooksResolver,
        { provide: WebhookTargetPolicy, useValue: new WebhookTargetPolicy(parseNetworks(config.BERTH_WEBHOOK_ALLOWED_NETWORKS)) },
        NotifyWorker,
        MonitorService,
        SiteHealthService,
        DockerEventsService,
        ReconcilerService,
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_PIPE, useValue: validationPipe },
        { provide: APP_FILTER, useClass: HttpErrorFilter },
      ],
    };
  }
}

@Module({ providers: [ApiKeysService], exports: [ApiKeysService] })
export class AuthModule {}
