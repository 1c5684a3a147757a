import Docker from 'dockerode';
import { dockerOptions } from '../src/docker/docker-options';
import { removeInstanceObjects } from './docker-cleanup';
import { TEST_INSTANCE } from './env';

export default async function globalTeardown(): Promise<void> {
  await removeInstanceObjects(new Docker(dockerOptions(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock')), TEST_INSTANCE);
}
