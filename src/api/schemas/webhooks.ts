import { type Static, Type } from '@sinclair/typebox';
import { Pagination } from './common.js';

export const CreateWebhookRequest = Type.Object(
  {
    url: Type.String({ maxLength: 2048, description: 'Where events are POSTed (https recommended)' }),
    events: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: 20,
        description:
          'Event types to deliver (domain.verified, domain.failed, domain.moved, domain.active, domain.routing_changed, certificate.issued, certificate.renewed, certificate.failed, certificate.expiring), or ["*"] (the default) for all',
      }),
    ),
    secret: Type.Optional(
      Type.String({ minLength: 16, maxLength: 200, description: 'Signing secret; generated when omitted' }),
    ),
  },
  {
    $id: 'CreateWebhookRequest',
    title: 'CreateWebhookRequest',
    examples: [{ url: 'https://hooks.acme.com/portico', events: ['domain.active', 'domain.moved'] }],
  },
);
export type CreateWebhookRequest = Static<typeof CreateWebhookRequest>;

export const WebhookResponse = Type.Object(
  {
    webhook_id: Type.String(),
    url: Type.String(),
    events: Type.Array(Type.String()),
    created_at: Type.String(),
    secret: Type.Optional(Type.String({ description: 'Only in the answer to its creation: store it then' })),
  },
  {
    $id: 'WebhookResponse',
    title: 'WebhookResponse',
    examples: [
      {
        webhook_id: 'wh_9wlv82ssyd29',
        url: 'https://hooks.acme.com/portico',
        events: ['domain.active', 'domain.moved'],
        created_at: '2026-05-04T09:20:11.981Z',
        secret: 'whsec_lqQaPHWyEErjLoKsLW2PlyZ-pL7Fd9t0',
      },
    ],
  },
);
export type WebhookResponse = Static<typeof WebhookResponse>;

export const WebhookListResponse = Type.Object(
  { results: Type.Array(Type.Ref(WebhookResponse)), pagination: Type.Ref(Pagination) },
  { $id: 'WebhookListResponse', title: 'WebhookListResponse' },
);

export const DeliveryResponse = Type.Object(
  {
    delivery_id: Type.String(),
    event_id: Type.String(),
    event_type: Type.Union([Type.String(), Type.Null()]),
    status: Type.String({ description: 'pending, delivered or failed' }),
    attempts: Type.Integer(),
    response_status: Type.Union([Type.Integer(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  {
    $id: 'DeliveryResponse',
    title: 'DeliveryResponse',
    examples: [
      {
        delivery_id: 'dlv_3k9v0m2q8x1c',
        event_id: 'evt_7h2n5b1r0z4e',
        event_type: 'domain.active',
        status: 'delivered',
        attempts: 1,
        response_status: 200,
        last_error: null,
        created_at: '2026-05-04T09:22:40.310Z',
        updated_at: '2026-05-04T09:22:40.702Z',
      },
    ],
  },
);
export type DeliveryResponse = Static<typeof DeliveryResponse>;

export const DeliveryListResponse = Type.Object(
  { results: Type.Array(Type.Ref(DeliveryResponse)), pagination: Type.Ref(Pagination) },
  { $id: 'DeliveryListResponse', title: 'DeliveryListResponse' },
);

export const WebhookIdParam = Type.String({
  title: 'Webhook Id',
  description: 'Webhook ID (e.g. wh_abc123def456)',
});

export const webhookSchemas = [
  CreateWebhookRequest,
  WebhookResponse,
  WebhookListResponse,
  DeliveryResponse,
  DeliveryListResponse,
];
