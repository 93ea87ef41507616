import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

/**
 * Two validators: JSON bodies are checked strictly (a mistyped or unknown field is a 400 that
 * names it, nothing is coerced or silently dropped); query strings and path parameters arrive
 * as text, so those coerce ("10" → 10) and fill defaults.
 */
const strict = addFormats(new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false, strict: false }));
const lenient = addFormats(new Ajv({ allErrors: false, coerceTypes: 'array', removeAdditional: false, useDefaults: true, strict: false }));

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const validate = (httpPart === 'body' ? strict : lenient).compile(schema as object);
  return (data: unknown) => (validate(data) ? { value: data } : { error: Object.assign(new Error('validation'), { validation: validate.errors, validationContext: httpPart }) });
};
