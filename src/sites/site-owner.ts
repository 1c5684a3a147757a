import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { EventsService } from '../events/events.service';
import { NotifyQueue } from '../events/notify.queue';
import { NotifyJob } from '../events/notify.types';
import type { Site } from '../generated/prisma/client';
import { setPasswordLink, type InstallResult, type WordPressSettings } from './wordpress-install';

/** The email that lets a site's owner choose their password (no password was given at creation). */
export function setPasswordMail(wp: WordPressSettings, url: string, link: string): { subject: string; text: string } {
  const text = [
    `Hello ${wp.adminUser},`,
    '',
    `Your WordPress site "${wp.title}" is ready at ${url}`,
    '',
    `Your username: ${wp.adminUser}`,
    'Choose your password here (the link works once and expires in 24 hours):',
    link,
    '',
    `Then log in at ${url.replace(/\/?$/, '/')}wp-admin/`,
    '',
    '-- Berth',
  ].join('\n');
  return { subject: `Your WordPress site "${wp.title}" is ready: choose your password`, text };
}

/**
 * Tells a site's owner their WordPress is installed: an event for the tenant, and when no
 * password was given, the set-password email to the admin's address. The email's row is
 * marked sensitive: its body never reaches an event and is not kept once sent.
 */
@Injectable()
export class SiteOwner {
  constructor(
    private readonly prisma: PrismaService,
    private readonly events: EventsService,
    private readonly notify: NotifyQueue,
  ) {}

  async installed(site: Site, wp: WordPressSettings, url: string, result: InstallResult): Promise<void> {
    const emailed = result.resetKey !== null;
    const event = await this.events.record({
      tenantId: site.tenantId,
      siteId: site.id,
      type: 'site.installed',
      message: `WordPress ${result.fresh ? 'installed' : 'found installed'} for ${wp.adminUser} at ${url}${emailed ? `; set-password email to ${wp.adminEmail}` : ''}`,
      data: {
        siteName: site.name,
        url,
        adminUser: wp.adminUser,
        adminEmail: wp.adminEmail,
        fresh: result.fresh,
        setPasswordEmail: emailed,
      },
    });
    if (!result.resetKey) return;
    const mail = setPasswordMail(wp, url, setPasswordLink(url, result.resetKey, wp.adminUser));
    const n = await this.prisma.emailNotification.create({
      data: {
        tenantId: site.tenantId,
        eventId: event.id,
        recipient: wp.adminEmail,
        subject: mail.subject,
        body: mail.text,
        sensitive: true,
      },
    });
    await this.notify.add(NotifyJob.Email, { notificationId: n.id }, `email-${n.id}`);
  }
}
