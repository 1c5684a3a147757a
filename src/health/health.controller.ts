import { Controller, Get, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.guard';
import { PrismaService } from '../database/prisma.service';
import { DockerService } from '../docker/docker.service';
import { RedisService } from '../redis/redis.service';
import { withTimeout } from '../jobs/step-recorder';

type Check = { ok: boolean; error?: string; ms: number };

async function check(fn: () => Promise<unknown>): Promise<Check> {
  const t = Date.now();
  try {
    await withTimeout(fn(), 2000, 'check');
    return { ok: true, ms: Date.now() - t };
  } catch (e) {
    return { ok: false, error: (e as Error).message, ms: Date.now() - t };
  }
}

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly prisma: PrismaService,
    private readonly redis: RedisService,
    private readonly docker: DockerService,
  ) {}

  /** The process is alive. */
  @Public()
  @Get('healthz')
  healthz() {
    return { status: 'ok' };
  }

  /** Every dependency answers; 503 names the one that does not. */
  @Public()
  @Get('readyz')
  async readyz(@Res({ passthrough: true }) res: Response) {
    const [postgres, redis, docker] = await Promise.all([
      check(() => this.prisma.$queryRaw`SELECT 1`),
      check(() => this.redis.client.ping()),
      check(() => this.docker.ping()),
    ]);
    const ready = postgres.ok && redis.ok && docker.ok;
    res.status(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'unavailable', checks: { postgres, redis, docker } };
  }
}
