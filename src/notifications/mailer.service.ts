import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import nodemailer, { type Transporter } from 'nodemailer';
import { BERTH_CONFIG, type BerthConfig } from '../config/config';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

/** The only place that talks SMTP. `configured` is false when no server is set. */
@Injectable()
export class MailerService implements OnModuleDestroy {
  private readonly transport?: Transporter;

  constructor(@Inject(BERTH_CONFIG) private readonly config: BerthConfig) {
    if (config.BERTH_SMTP_HOST) {
      this.transport = nodemailer.createTransport({
        host: config.BERTH_SMTP_HOST,
        port: config.BERTH_SMTP_PORT,
        secure: config.BERTH_SMTP_SECURE,
        auth: config.BERTH_SMTP_USER ? { user: config.BERTH_SMTP_USER, pass: config.BERTH_SMTP_PASSWORD ?? '' } : undefined,
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 20_000,
      });
    }
  }

  get configured(): boolean {
    return this.transport !== undefined;
  }

  async send(mail: Mail): Promise<void> {
    if (!this.transport) throw new Error('no SMTP server is configured');
    await this.transport.sendMail({ from: this.config.BERTH_SMTP_FROM, ...mail });
  }

  onModuleDestroy(): void {
    this.transport?.close();
  }
}
