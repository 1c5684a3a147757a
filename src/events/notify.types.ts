/** The notification queue: one job name per payload type. */
export const NOTIFY_QUEUE = 'berth-notify';

export const NotifyJob = {
  Dispatch: 'event.dispatch',
  Email: 'email.send',
  Webhook: 'webhook.deliver',
} as const;
export type NotifyJob = (typeof NotifyJob)[keyof typeof NotifyJob];

export interface NotifyPayloads {
  [NotifyJob.Dispatch]: { eventId: string };
  [NotifyJob.Email]: { notificationId: string };
  [NotifyJob.Webhook]: { deliveryId: string };
}
export type NotifyPayload = NotifyPayloads[NotifyJob];

export const eventChannel = {
  all: 'berth:events:all',
  tenant: (tenantId: string) => `berth:events:tenant:${tenantId}`,
};
