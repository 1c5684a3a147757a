import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { type ArgumentMetadata, DynamicModule, Module, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { GraphQLModule } from '@nestjs/graphql';
import type { ValidationError } from 'class-validator';
import { GraphQLError, parse, type DocumentNode, type ExecutionResult, type ValidationRule } from 'graphql';
import type { BerthConfig } from '../config/config';
import { ConfigModule } from '../config/config.module';
import { ApiKeysService } from '../auth/api-keys.service';
import { AuthModule } from '../auth/auth.module';
import { type Principal } from '../common/principal';
import { RevocationsService } from '../revocations/revocations.service';
import { bearer } from '../auth/auth.guard';
import { BerthError, ErrorCode } from '../common/errors';
import { HttpErrorFilter } from '../common/http-error.filter';
import { formatGraphQLError } from '../common/graphql-errors';
import { queryLimitErrors, queryLimits } from '../common/graphql-limits';
import { assertSaneInput } from '../common/sane-input';
import { BackupsModule } from '../backups/backups.module';
import { DomainsModule } from '../domains/domains.module';
import { EdgeModule } from '../edge/edge.module';
import { EventsModule } from '../events/events.module';
import { HealthModule } from '../health/health.module';
import { JobsModule } from '../jobs/jobs.module';
import { MetricsModule } from '../metrics/metrics.module';
import { MonitorModule } from '../monitor/monitor.module';
import { NodesModule } from '../nodes/nodes.module';
import { NotificationsModule } from '../notifications/notifications.module';
import { ReconcileModule } from '../reconcile/reconcile.module';
import { SitesModule } from '../sites/sites.module';
import { TenantsModule } from '../tenants/tenants.module';
import { WorkerModule } from '../worker/worker.module';

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

/** What Berth keeps on a graphql-ws connection: the key it was opened with, and how to untie it from that key's revocation. */
interface WsExtra {
  principal?: Principal;
  untie?: () => void;
  closed?: boolean;
  socket?: { close(code: number, reason: string): void };
}

@Module({})
export class AppModule {
  static forConfig(config: BerthConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forConfig(config),
        GraphQLModule.forRootAsync<ApolloDriverConfig>({
          driver: ApolloDriver,
          inject: [ApiKeysService, RevocationsService],
          useFactory: (keys: ApiKeysService, revocations: RevocationsService) => ({
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
                  const extra = ctx.extra as WsExtra;
                  const principal = await keys.authenticate(bearer(typeof raw === 'string' ? raw : undefined)).catch(() => undefined);
                  extra.principal = principal;
                  // 4401 (graphql-ws' Unauthorized) names the cause; returning false alone would close with 4403 Forbidden.
                  if (!principal) {
                    extra.socket?.close(4401, ErrorCode.UNAUTHENTICATED);
                    return false;
                  }
                  // Closed while the key was looked up: graphql-ws has called onClose already.
                  if (extra.closed) return false;
                  // Every operation on the connection runs as this key: its revocation closes it
                  // (4403 Forbidden), subscriptions and all.
                  extra.untie = revocations.holdOpen(principal.keyId, () => extra.socket?.close(4403, 'API key revoked'));
                  return true;
                },
                onClose: (ctx: { extra: unknown }) => {
                  const extra = ctx.extra as WsExtra;
                  extra.closed = true;
                  extra.untie?.();
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
        EdgeModule,
        EventsModule,
        NotificationsModule,
        JobsModule,
        NodesModule,
        MetricsModule,
        SitesModule,
        DomainsModule,
        BackupsModule,
        TenantsModule,
        ReconcileModule,
        MonitorModule,
        WorkerModule,
        HealthModule,
      ],
      providers: [
        { provide: APP_PIPE, useValue: validationPipe },
        { provide: APP_FILTER, useClass: HttpErrorFilter },
      ],
    };
  }
}
