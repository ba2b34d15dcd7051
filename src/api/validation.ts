import type { TSchema } from '@sinclair/typebox';
import { Ajv, type FuncKeywordDefinition, type Options, type SchemaValidateFunction } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

/**
 * Request validation with two Ajv instances. Bodies are JSON and validated strictly, as pydantic
 * does for Mixpeek (a number is not a string; every error reported at once). Path and query values
 * arrive as text, so there types are coerced (`?limit=10` is the integer 10).
 *
 * Booleans, in a body or a query, accept what pydantic's lax mode accepts, because Mixpeek's API
 * does and its clients send them (`"is_primary": "true"`, `1`): see `LAX_BOOLEAN_KEYWORD`.
 */
export function createValidatorCompiler(sharedSchemas: readonly TSchema[]): FastifySchemaCompiler<TSchema> {
  const common: Options = { strict: false, allErrors: true, useDefaults: true, removeAdditional: false };
  const body = new Ajv({ ...common, coerceTypes: false });
  const text = new Ajv({ ...common, coerceTypes: true });
  for (const ajv of [body, text]) {
    ajv.addKeyword(laxBooleanKeyword);
    for (const schema of sharedSchemas) ajv.addSchema(withLaxBooleans(schema));
  }
  return ({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(withLaxBooleans(schema));
}

/**
 * The keyword that stands for `type: "boolean"` in the schemas the validators compile (the
 * OpenAPI document still says `boolean`). Ajv's own coercion cannot do this: its boolean coercion
 * is all or nothing per instance, knows only "true"/"false"/1/0, and turns `null` into false.
 */
export const LAX_BOOLEAN_KEYWORD = 'laxBoolean';

/**
 * pydantic's lax booleans (docs.pydantic.dev, "Booleans"): true and false; the integers 1 and 0;
 * a string that, lower-cased, is one of these. Anything else is refused with pydantic's error
 * type: another string or integer is `bool_parsing`, any other value (a fraction, null, a list,
 * an object) `bool_type`.
 */
const LAX_BOOLEAN_STRINGS: ReadonlyMap<string, boolean> = new Map([
  ...['1', 'true', 't', 'yes', 'y', 'on'].map((text) => [text, true] as const),
  ...['0', 'false', 'f', 'no', 'n', 'off'].map((text) => [text, false] as const),
]);

export type LaxBooleanError = 'bool_parsing' | 'bool_type';

export function parseLaxBoolean(value: unknown): boolean | LaxBooleanError {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (value === 1 || value === 0) return value === 1;
    return Number.isInteger(value) ? 'bool_parsing' : 'bool_type';
  }
  if (typeof value === 'string') return LAX_BOOLEAN_STRINGS.get(value.toLowerCase()) ?? 'bool_parsing';
  return 'bool_type';
}

const validateLaxBoolean: SchemaValidateFunction = (_schema, data, _parentSchema, context) => {
  const parsed = parseLaxBoolean(data);
  if (typeof parsed === 'boolean') {
    // The value is replaced where it sits, so the route sees a real boolean. (A request part is
    // never a bare boolean: there is always an object to write into.)
    if (parsed !== data && context) context.parentData[context.parentDataProperty] = parsed;
    return true;
  }
  validateLaxBoolean.errors = [
    { keyword: LAX_BOOLEAN_KEYWORD, message: 'must be boolean', params: { error: parsed } },
  ];
  return false;
};

const laxBooleanKeyword: FuncKeywordDefinition = {
  keyword: LAX_BOOLEAN_KEYWORD,
  modifying: true,
  errors: true,
  validate: validateLaxBoolean,
};

/** A copy of `schema` in which every `type: "boolean"` is the lax keyword instead. */
function withLaxBooleans<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map(withLaxBooleans) as T;
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Record<string, unknown> = {};
  for (const [keyword, value] of Object.entries(schema)) copy[keyword] = withLaxBooleans(value);
  if (copy.type === 'boolean') {
    delete copy.type;
    copy[LAX_BOOLEAN_KEYWORD] = true;
  }
  return copy as T;
}
