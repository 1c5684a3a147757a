import type { Event } from '../generated/prisma/client';

interface SiteEventData {
  siteName?: string;
  url?: string | null;
  reason?: string;
}

/** The email a tenant gets about a site event. */
export function siteMail(
  event: Pick<Event, 'type' | 'message' | 'createdAt' | 'data'>,
  tenantName: string,
): { subject: string; text: string } {
  const data = (event.data ?? {}) as SiteEventData;
  const site = data.siteName ?? 'your site';
  const state = event.type === 'site.down' ? 'DOWN' : event.type === 'site.up' ? 'UP again' : event.type;
  const lines = [
    `Hello ${tenantName},`,
    '',
    `Your site ${site} is ${state}.`,
    data.url ? `URL: ${data.url}` : undefined,
    data.reason ? `Reason: ${data.reason}` : undefined,
    `When: ${event.createdAt.toISOString()}`,
    '',
    event.message,
    '',
    '-- Berth',
  ];
  return { subject: `[Berth] Site ${site} is ${state}`, text: lines.filter((l) => l !== undefined).join('\n') };
}
