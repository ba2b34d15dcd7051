import type { TSchema } from '@sinclair/typebox';
import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

/**
 * Request validation with two Ajv instances. Bodies are JSON and validated strictly, as pydantic
 * does for Mixpeek (a number is not a string; every error reported at once). Path and query values
 * arrive as text, so there types are coerced (`?limit=10` is the integer 10).
 */
export function createValidatorCompiler(sharedSchemas: readonly TSchema[]): FastifySchemaCompiler<TSchema> {
  const common: Options = { strict: false, allErrors: true, useDefaults: true, removeAdditional: false };
  const body = new Ajv({ ...common, coerceTypes: false });
  const text = new Ajv({ ...common, coerceTypes: true });
  for (const schema of sharedSchemas) {
    body.addSchema(schema);
    text.addSchema(schema);
  }
  return ({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema);
}
