import { type Static, Type } from '@sinclair/typebox';
import { Pagination } from './common.js';

const Slug = Type.String({
  minLength: 3,
  maxLength: 60,
  pattern: '^[a-z0-9][a-z0-9-]*[a-z0-9]$',
  title: 'Slug',
  description:
    "URL-safe name, unique across the platform; the app's default hostname is {slug}.{apps domain}",
});

const OriginUrl = Type.Union([Type.String({ maxLength: 2048 }), Type.Null()], {
  title: 'Origin Url',
  description: 'Where the edge sends the app\'s traffic (http or https), e.g. "https://origin.example.com"',
});

export const AppMeta = Type.Object(
  {
    title: Type.String({ minLength: 1, maxLength: 200, title: 'Title' }),
    description: Type.Optional(
      Type.Union([Type.String({ maxLength: 2000 }), Type.Null()], { title: 'Description' }),
    ),
  },
  { $id: 'AppMeta', title: 'AppMeta' },
);

/** AppMeta as answered: `description` is always sent, null when unset. */
export const AppMetaResponse = Type.Object(
  {
    title: Type.String({ title: 'Title' }),
    description: Type.Union([Type.String(), Type.Null()], { title: 'Description' }),
  },
  { $id: 'AppMetaResponse', title: 'AppMetaResponse' },
);

export const CreateAppRequest = Type.Object(
  {
    slug: Slug,
    meta: Type.Ref(AppMeta),
    origin_url: Type.Optional(OriginUrl),
  },
  {
    $id: 'CreateAppRequest',
    title: 'CreateAppRequest',
    examples: [
      {
        slug: 'acme-search',
        meta: { title: 'Acme search', description: 'Search for acme.com' },
        origin_url: 'https://origin.acme.com',
      },
    ],
  },
);
export type CreateAppRequest = Static<typeof CreateAppRequest>;

export const UpdateAppRequest = Type.Object(
  {
    slug: Type.Optional(Slug),
    meta: Type.Optional(Type.Ref(AppMeta)),
    origin_url: Type.Optional(OriginUrl),
  },
  {
    $id: 'UpdateAppRequest',
    title: 'UpdateAppRequest',
    examples: [{ origin_url: 'https://origin-2.acme.com' }],
  },
);
export type UpdateAppRequest = Static<typeof UpdateAppRequest>;

export const AppResponse = Type.Object(
  {
    app_id: Type.String({ title: 'App Id' }),
    slug: Type.String({ title: 'Slug' }),
    meta: Type.Ref(AppMetaResponse),
    origin_url: Type.Union([Type.String(), Type.Null()], { title: 'Origin Url' }),
    default_hostname: Type.String({ title: 'Default Hostname' }),
    created_at: Type.String({ title: 'Created At' }),
    updated_at: Type.String({ title: 'Updated At' }),
  },
  {
    $id: 'AppResponse',
    title: 'AppResponse',
    examples: [
      {
        app_id: 'app_ytzvdbb02b63',
        slug: 'acme-search',
        meta: { title: 'Acme search', description: 'Search for acme.com' },
        origin_url: 'https://origin.acme.com/',
        default_hostname: 'acme-search.apps.example.net',
        created_at: '2026-05-04T09:08:44.120Z',
        updated_at: '2026-05-04T09:08:44.120Z',
      },
    ],
  },
);
export type AppResponse = Static<typeof AppResponse>;

export const AppListResponse = Type.Object(
  { results: Type.Array(Type.Ref(AppResponse)), pagination: Type.Ref(Pagination) },
  { $id: 'AppListResponse', title: 'AppListResponse' },
);

export const appSchemas = [
  AppMeta,
  AppMetaResponse,
  CreateAppRequest,
  UpdateAppRequest,
  AppResponse,
  AppListResponse,
];
