import { type Static, Type } from '@sinclair/typebox';

/**
 * Shared schemas. Each has an `$id`, is registered once with `addSchema`, and is referenced with
 * `Type.Ref`: the routes validate and serialize with them and /openapi.json lists them under
 * `components.schemas` by that name. Titles and descriptions follow Mixpeek's published spec
 * (shared/spec/add-domain.openapi.md) word for word.
 */
export const ErrorDetail = Type.Object(
  {
    message: Type.String({ title: 'Message', description: 'Human-readable error message' }),
    type: Type.String({ title: 'Type', description: 'Stable error type identifier (machine-readable)' }),
    code: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        title: 'Code',
        description:
          'Fine-grained error code for programmatic handling (e.g., namespace_name_taken, feature_extractor_not_found). Present only when consumers may need to branch on a specific error condition.',
      }),
    ),
    details: Type.Optional(
      Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], {
        title: 'Details',
        description: 'Optional structured details to help debugging (validation errors, IDs, etc.)',
      }),
    ),
  },
  { $id: 'ErrorDetail', title: 'ErrorDetail', description: 'Error detail model.' },
);

export const ErrorResponse = Type.Object(
  {
    success: Type.Optional(
      Type.Boolean({ title: 'Success', description: 'Always false for error responses', default: false }),
    ),
    status: Type.Integer({ title: 'Status', description: 'HTTP status code for this error' }),
    error: Type.Ref(ErrorDetail, { description: 'Error details payload' }),
  },
  {
    $id: 'ErrorResponse',
    title: 'ErrorResponse',
    description: 'Error response model.',
    examples: [
      {
        error: {
          details: { id: 'ns_123', resource: 'namespace' },
          message: 'Namespace not found',
          type: 'NotFoundError',
        },
        status: 404,
        success: false,
      },
    ],
  },
);
export type ErrorResponse = Static<typeof ErrorResponse>;

export const ValidationError = Type.Object(
  {
    loc: Type.Array(Type.Union([Type.String(), Type.Integer()]), { title: 'Location' }),
    msg: Type.String({ title: 'Message' }),
    type: Type.String({ title: 'Error Type' }),
  },
  { $id: 'ValidationError', title: 'ValidationError' },
);
export type ValidationError = Static<typeof ValidationError>;

export const HTTPValidationError = Type.Object(
  { detail: Type.Optional(Type.Array(Type.Ref(ValidationError), { title: 'Detail' })) },
  { $id: 'HTTPValidationError', title: 'HTTPValidationError' },
);

export const Pagination = Type.Object(
  {
    total: Type.Integer({ description: 'Items across all pages' }),
    limit: Type.Integer(),
    offset: Type.Integer(),
    has_next: Type.Boolean(),
  },
  { $id: 'Pagination', title: 'Pagination' },
);

export const DeleteResponse = Type.Object(
  { success: Type.Boolean(), message: Type.String() },
  { $id: 'DeleteResponse', title: 'DeleteResponse' },
);

export const ListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Items per page (1 to 1000)' }),
  // Bounded so that no value a client sends can overflow the database's integer (2^63).
  offset: Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    default: 0,
    description: 'Items to skip',
  }),
});
export type ListQuery = Static<typeof ListQuery>;

export const AppIdParam = Type.String({
  description: 'App ID (e.g. app_abc123def456)',
  title: 'App Id',
});

/** Every shared schema, for `addSchema` and the validators. */
export const commonSchemas = [
  ErrorDetail,
  ErrorResponse,
  ValidationError,
  HTTPValidationError,
  Pagination,
  DeleteResponse,
];

/**
 * The error responses every authenticated operation documents, with Mixpeek's descriptions. 409,
 * 413 and 429 are ours (API.md) and appear only where they can happen.
 */
export const errorResponses = {
  400: Type.Ref(ErrorResponse, { description: 'Bad Request' }),
  401: Type.Ref(ErrorResponse, { description: 'Unauthorized' }),
  403: Type.Ref(ErrorResponse, { description: 'Forbidden' }),
  404: Type.Ref(ErrorResponse, { description: 'Not Found' }),
  422: Type.Ref(HTTPValidationError, { description: 'Validation Error' }),
  500: Type.Ref(ErrorResponse, { description: 'Internal Server Error' }),
};
export const conflictResponse = { 409: Type.Ref(ErrorResponse, { description: 'Conflict' }) };
