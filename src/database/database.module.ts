import { Module } from '@nestjs/common';
import { PrismaService } from './prisma.service';

/** PostgreSQL through Prisma: the only way in to Berth's records. */
@Module({ providers: [PrismaService], exports: [PrismaService] })
export class DatabaseModule {}
