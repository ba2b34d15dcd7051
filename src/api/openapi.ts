import type { TSchema } from '@sinclair/typebox';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Finishing touches on the generated OpenAPI 3.1 document, so it reads as Mixpeek's does
 * (shared/spec/add-domain.openapi.md):
 * - @fastify/swagger drops every keyword beside a `$ref` (OpenAPI 3.0 forbade them); 3.1 allows
 *   them, and Mixpeek's spec documents `ErrorResponse.error` that way. They are copied back from
 *   the registered schemas.
 * - A path parameter's description is kept on its schema too, as FastAPI writes it.
 * - A query parameter with a default is not required of the client (the validator fills the
 *   default in, so the route's type has it), as FastAPI writes it: a client generated from the
 *   document can list without `limit` and `offset`.
 */
export function completeOpenApiDocument(document: Json, registered: readonly TSchema[]): Json {
  const components = (document.components as Json | undefined)?.schemas as Record<string, Json> | undefined;
  for (const schema of registered) {
    const generated = components?.[String(schema.$id)];
    const properties = schema.properties as Record<string, Json> | undefined;
    const generatedProperties = generated?.properties as Record<string, Json> | undefined;
    if (!properties || !generatedProperties) continue;
    for (const [name, property] of Object.entries(properties)) {
      const target = generatedProperties[name];
      if (!target || typeof property.$ref !== 'string') continue;
      for (const [keyword, value] of Object.entries(property)) {
        if (keyword !== '$ref' && !(keyword in target)) target[keyword] = value;
      }
    }
  }
  for (const pathItem of Object.values((document.paths as Json | undefined) ?? {})) {
    for (const operation of Object.values(isObject(pathItem) ? pathItem : {})) {
      for (const parameter of (isObject(operation) && Array.isArray(operation.parameters)
        ? operation.parameters
        : []) as Json[]) {
        const schema = parameter.schema;
        if (parameter.in === 'query' && isObject(schema) && schema.default !== undefined) {
          parameter.required = false;
        }
        if (
          isObject(schema) &&
          typeof parameter.description === 'string' &&
          schema.description === undefined
        ) {
          schema.description = parameter.description;
        }
      }
    }
  }
  return document;
}
