import { createRequire } from "node:module";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { GitHubRequestRecord } from "./start-github-server.js";

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

interface OpenApiDocument {
  paths: Record<string, Record<string, { operationId: string; responses: Record<string, OpenApiResponse> }>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, OpenApiResponse> };
}
type OpenApiResponse = { $ref?: string; content?: Record<string, { schema?: unknown }> };

/** A verdict on one recorded response. */
export interface ResponseVerdict {
  operationId: string;
  status: number;
  /** Ajv's errors; empty when the body matches GitHub's published schema. */
  errors: string[];
}

/**
 * Checks the local server's REST responses against GitHub's own OpenAPI description of
 * api.github.com (from `@octokit/openapi`). Test-only: not exported from the package.
 */
export class OpenApiResponseValidator {
  readonly #document: OpenApiDocument;
  readonly #ajv: Ajv;
  readonly #compiled = new Map<string, ValidateFunction | null>();

  constructor() {
    this.#document = createRequire(import.meta.url)("@octokit/openapi/generated/api.github.com.json") as OpenApiDocument;
    this.#ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(this.#ajv);
    this.#ajv.addSchema({ $id: "github.json", components: { schemas: toJsonSchema(this.#document.components.schemas) } });
  }

  /** Validates a recorded REST response; throws when its operation is not in GitHub's description. */
  validate(record: GitHubRequestRecord): ResponseVerdict {
    if (record.kind !== "api" || !record.route) throw new Error(`Not a REST operation: ${record.method} ${record.path}`);
    const operation = this.#document.paths[record.route]?.[record.method.toLowerCase()];
    if (!operation) throw new Error(`GitHub's description has no ${record.method} ${record.route}`);
    const key = `${record.method} ${record.route} ${record.status}`;
    if (!this.#compiled.has(key)) this.#compiled.set(key, this.#compile(operation.responses, record.status));
    const validate = this.#compiled.get(key)!;
    if (!validate) return { operationId: operation.operationId, status: record.status, errors: [] };
    const valid = validate(record.responseBody);
    return {
      operationId: operation.operationId,
      status: record.status,
      errors: valid ? [] : (validate.errors ?? []).slice(0, 10).map((error) => `${error.instancePath || "/"} ${error.message ?? ""} ${JSON.stringify(error.params)}`),
    };
  }

  #compile(responses: Record<string, OpenApiResponse>, status: number): ValidateFunction | null {
    // Errors GitHub sends on every operation (401, 429, 5xx) are not always listed per operation; they are basic-error.
    let response = responses[String(status)] ?? (status >= 400 ? { content: { "application/json": { schema: { $ref: "#/components/schemas/basic-error" } } } } : undefined);
    if (!response) throw new Error(`Status ${status} is not a documented response`);
    if (response.$ref) response = this.#document.components.responses[response.$ref.split("/").pop()!]!;
    const schema = response.content?.["application/json"]?.schema;
    if (!schema) return null;
    const rebased = JSON.parse(JSON.stringify(toJsonSchema(schema)).replaceAll('"#/components/', '"github.json#/components/')) as object;
    return this.#ajv.compile(rebased);
  }
}

/**
 * OpenAPI 3.0's `nullable: true` is not JSON Schema; GitHub's description also puts it beside
 * `oneOf`, `allOf` and `$ref`, which Ajv rejects. Rewrite it as "this, or null".
 */
function toJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (typeof schema !== "object" || schema === null) return schema;
  const { nullable, ...rest } = schema as Record<string, unknown>;
  const converted: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rest)) {
    // `properties` maps names to schemas; an example or enum is data, not schema.
    converted[key] = key === "example" || key === "examples" || key === "enum" ? value : toJsonSchema(value);
  }
  if (nullable !== true) return converted;
  if (typeof converted.type === "string" && !converted.$ref && !converted.oneOf && !converted.anyOf && !converted.allOf) {
    const result: Record<string, unknown> = { ...converted, type: [converted.type, "null"] };
    if (Array.isArray(converted.enum) && !converted.enum.includes(null)) result.enum = [...converted.enum, null];
    return result;
  }
  return { anyOf: [converted, { type: "null" }] };
}
