import { Controller, Get, Logger, Res } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../common/principal';
import { PrismaService } from '../database/prisma.service';
import { DockerService } from '../docker/docker.service';
import { RedisService } from '../redis/redis.service';
import { withTimeout } from '../jobs/step-recorder';
import { Operation } from '../common/api-operation';

const DEPENDENCIES = ['postgres', 'redis', 'docker'] as const;
type Dependency = (typeof DEPENDENCIES)[number];
const READINESS = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'unavailable'] },
    down: { type: 'array', items: { type: 'string', enum: [...DEPENDENCIES] } },
  },
};

/** undefined when fn answered within 2 s, else why not. */
async function failure(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await withTimeout(fn(), 2000, 'check');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

@ApiTags('health')
@Controller()
export class HealthController {
  private readonly logger = new Logger(HealthController.name);
  /** Each dependency's last failure, so that a prober polling every second does not flood the log. */
  private readonly lastFailure = new Map<Dependency, string>();

  constructor(
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly docker: DockerService,
  ) {}

  /** The process is alive. */
  @Public()
  @Get('healthz')
  @Operation('getHealth', { summary: 'Is the process alive' })
  @ApiOkResponse({ schema: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } })
  healthz() {
    return { status: 'ok' };
  }

  /**
   * Every dependency answers; 503 names the ones that do not. Callers are not authenticated,
   * so the reasons (addresses, socket paths, driver messages) go to the log, not the answer.
   */
  @Public()
  @Get('readyz')
  @Operation('getReadiness', {
    summary: 'Are PostgreSQL, Redis and the Docker Engine reachable',
    description: '503 names the ones that are not.',
  })
  @ApiOkResponse({ description: 'Every dependency answers', schema: READINESS })
  @ApiResponse({ status: 503, description: 'The dependencies named in down do not answer', schema: READINESS })
  async readyz(@Res({ passthrough: true }) res: Response): Promise<{ status: 'ready' | 'unavailable'; down: Dependency[] }> {
    const reasons = await Promise.all([
      failure(() => this.prisma.$queryRaw`SELECT 1`),
      failure(() => this.redis.client.ping()),
      failure(() => this.docker.ping()),
    ]);
    const down = DEPENDENCIES.filter((d, i) => this.noteState(d, reasons[i]));
    res.status(down.length ? 503 : 200);
    return { status: down.length ? 'unavailable' : 'ready', down };
  }

  /** Logs a dependency's failure when it starts or its reason changes, and its recovery; true when down. */
  private noteState(dependency: Dependency, reason: string | undefined): boolean {
    const last = this.lastFailure.get(dependency);
    if (reason === undefined) {
      if (last !== undefined) this.logger.log(`readyz: ${dependency} answers again`);
      this.lastFailure.delete(dependency);
      return false;
    }
    if (reason !== last) this.logger.warn(`readyz: ${dependency} is down: ${reason}`);
    this.lastFailure.set(dependency, reason);
    return true;
  }
}
