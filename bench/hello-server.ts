// The baselines of bench/api.ts: Fastify's hello-world, the fastest a Fastify route can answer here,
// and a POST route doing what add-domain does minus Portico (a JSON body validated against a
// schema, an answer of the same size serialized by a response schema): the ceiling for any Fastify
// route that takes a body, before authentication, rules and a database. And hello-world made to
// spend a given CPU time per request (`/burn/:us`), to show what latency any route of that cost gets
// from the same load. With BENCH_SQLITE_DIR set, also the insert-per-request references of
// lib/insert-reference.ts.
import Fastify from 'fastify';
import { registerInsertReference } from './lib/insert-reference.js';

const app = Fastify();
if (process.env.BENCH_SQLITE_DIR) registerInsertReference(app, process.env.BENCH_SQLITE_DIR);
app.get('/', async () => ({ hello: 'world' }));
app.get<{ Params: { us: string } }>('/burn/:us', async (request) => {
  const until = process.hrtime.bigint() + BigInt(Math.round(Number(request.params.us) * 1000));
  while (process.hrtime.bigint() < until);
  return { hello: 'world' };
});

const record = {
  type: 'object',
  properties: { type: { type: 'string' }, name: { type: 'string' }, value: { type: 'string' } },
} as const;
app.post(
  '/echo',
  {
    schema: {
      body: {
        type: 'object',
        properties: {
          domain: { type: 'string', minLength: 1, maxLength: 253 },
          is_primary: { type: 'boolean' },
        },
        required: ['domain'],
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            domain: { type: 'string' },
            status: { type: 'string' },
            is_primary: { type: 'boolean' },
            verification_token: { type: 'string' },
            cname_target: { type: 'string' },
            dns_records: { type: 'array', items: record },
            created_at: { type: 'string' },
          },
        },
      },
    },
  },
  async (request) => {
    const { domain, is_primary } = request.body as { domain: string; is_primary?: boolean };
    const token = 'q8w3e5r7t9y1u3i5o7p9a1s3d5f7g9h1';
    return {
      domain,
      status: 'pending',
      is_primary: is_primary ?? false,
      verification_token: token,
      cname_target: 'cname.apps.localhost',
      dns_records: [
        { type: 'TXT', name: `_mixpeek-verify.${domain}`, value: `mixpeek-site-verification=${token}` },
        { type: 'CNAME', name: domain, value: 'cname.apps.localhost' },
      ],
      created_at: new Date().toISOString(),
    };
  },
);

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
const address = app.server.address();
console.log(`listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
