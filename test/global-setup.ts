import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { dockerOptions } from '../src/docker/docker-options';
import { removeInstanceObjects } from './docker-cleanup';
import { TEST_INSTANCE, testRedisUrl } from './env';

/** A fresh test database, an empty Redis database and no Docker objects left by earlier runs. */
export default async function globalSetup(): Promise<void> {
  const testUrl = process.env.DATABASE_URL as string;
  const admin = new Client({ connectionString: process.env.BERTH_TEST_ADMIN_DATABASE_URL ?? testUrl });
  await admin.connect();
  const name = new URL(testUrl).pathname.slice(1);
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();

  const redis = new Redis(testRedisUrl());
  await redis.flushdb();
  redis.disconnect();

  await removeInstanceObjects(new Docker(dockerOptions(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock')), TEST_INSTANCE);
}
