import { DynamicModule, Global, Logger, Module } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { SecretBox } from '../common/crypto';
import { BERTH_CONFIG, type BerthConfig } from './config';

/** Outside production a missing key falls back to a fixed development key, loudly. */
function secretBox(config: BerthConfig): SecretBox {
  if (config.BERTH_ENCRYPTION_KEY) return new SecretBox(Buffer.from(config.BERTH_ENCRYPTION_KEY, 'base64'));
  new Logger('Config').warn('BERTH_ENCRYPTION_KEY is not set: using the insecure development key (never do this in production)');
  return new SecretBox(createHash('sha256').update('berth-development-key').digest());
}

@Global()
@Module({})
export class ConfigModule {
  static forConfig(config: BerthConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: BERTH_CONFIG, useValue: config },
        { provide: SecretBox, useValue: secretBox(config) },
      ],
      exports: [BERTH_CONFIG, SecretBox],
    };
  }
}
