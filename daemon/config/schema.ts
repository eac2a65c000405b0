import { readFileSync } from 'node:fs';
import type { ConfigProblem } from '../errors.js';

/**
 * The subset of JSON Schema that config/callvault.schema.json uses. The JSON
 * file is the single source of truth: editors validate against it, and this
 * interpreter applies its defaults and explains violations by key path.
 */
export interface SchemaNode {
  readonly type?: JsonType | readonly JsonType[];
  readonly description?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: boolean | SchemaNode;
  readonly propertyNames?: SchemaNode;
  readonly items?: SchemaNode;
  readonly minItems?: number;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly anyOf?: readonly SchemaNode[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly pattern?: string;
  readonly default?: unknown;
}

type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null';

const schemaUrl = new URL('../../../config/callvault.schema.json', import.meta.url);

let cached: SchemaNode | undefined;

export function configSchema(): SchemaNode {
  cached ??= JSON.parse(readFileSync(schemaUrl, 'utf8')) as SchemaNode;
  return cached;
}

function typeOf(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as JsonType;
}

function describeAllowed(node: SchemaNode): string {
  if (node.anyOf) return node.anyOf.map(describeAllowed).join(' or ');
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.enum) return `one of ${node.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  const types = node.type === undefined ? [] : ([] as JsonType[]).concat(node.type);
  let s = types.join(' or ');
  if (node.minimum !== undefined || node.maximum !== undefined) s += ` in [${node.minimum ?? '-inf'}, ${node.maximum ?? 'inf'}]`;
  if (node.pattern) s += ` matching ${node.pattern}`;
  if (node.minLength) s += ` of at least ${node.minLength} characters`;
  if (node.minItems) s += ` with at least ${node.minItems} item${node.minItems > 1 ? 's' : ''}`;
  return s;
}

/** Problems with `value` at `path`, without defaults (a pure check). */
function check(node: SchemaNode, value: unknown, path: string, out: ConfigProblem[]): void {
  if (node.anyOf) {
    const ok = node.anyOf.some((alt) => {
      const sub: ConfigProblem[] = [];
      check(alt, value, path, sub);
      return sub.length === 0;
    });
    if (!ok) out.push({ path, message: `got ${JSON.stringify(value)}, allowed: ${describeAllowed(node)}` });
    return;
  }
  const bad = (why: string): void => {
    out.push({ path, message: `${why}; allowed: ${describeAllowed(node)}` });
  };
  if (node.const !== undefined && value !== node.const) return bad(`got ${JSON.stringify(value)}`);
  if (node.type !== undefined) {
    const types = ([] as JsonType[]).concat(node.type);
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return bad(`got ${t} ${JSON.stringify(value)}`);
  }
  if (node.enum && !node.enum.includes(value)) return bad(`got ${JSON.stringify(value)}`);
  if (typeof value === 'number') {
    if (node.minimum !== undefined && value < node.minimum) return bad(`${value} is too small`);
    if (node.maximum !== undefined && value > node.maximum) return bad(`${value} is too large`);
  }
  if (typeof value === 'string') {
    if (node.minLength !== undefined && value.length < node.minLength) return bad(`too short (${value.length} characters)`);
    if (node.pattern && !new RegExp(node.pattern).test(value)) return bad(`got ${JSON.stringify(value)}`);
  }
  if (Array.isArray(value)) {
    if (node.minItems !== undefined && value.length < node.minItems) return bad(`${value.length} item${value.length === 1 ? '' : 's'}`);
    if (node.items) for (const [i, item] of value.entries()) check(node.items as SchemaNode, item, join(path, String(i)), out);
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of node.required ?? []) {
      if (!(key in obj)) out.push({ path: join(path, key), message: 'is required' });
    }
    for (const [key, v] of Object.entries(obj)) {
      if (node.propertyNames) check(node.propertyNames, key, join(path, key), out);
      const child = node.properties?.[key] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
      if (child) check(child, v, join(path, key), out);
      else if (node.additionalProperties === false) {
        out.push({ path: join(path, key), message: `unknown key; known keys here: ${Object.keys(node.properties ?? {}).join(', ')}` });
      }
    }
  }
}

/** Fill missing keys from schema defaults, recursively (into array items and map values too). */
function withDefaults(node: SchemaNode, value: unknown): unknown {
  const v = value === undefined ? structuredClone(node.default) : value;
  if (Array.isArray(v) && node.items) return v.map((item) => withDefaults(node.items as SchemaNode, item));
  if (typeOf(v) !== 'object') return v;
  const obj = { ...(v as Record<string, unknown>) };
  const rest = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
  for (const key of Object.keys(obj)) {
    if (rest && !node.properties?.[key]) obj[key] = withDefaults(rest, obj[key]);
  }
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const filled = withDefaults(child, obj[key]);
    if (filled !== undefined) obj[key] = filled;
  }
  return obj;
}

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Validate then default. Returns problems (empty when valid) and the filled value. */
export function applySchema(node: SchemaNode, value: unknown): { problems: ConfigProblem[]; value: unknown } {
  const problems: ConfigProblem[] = [];
  check(node, value ?? {}, '', problems);
  return { problems, value: problems.length ? undefined : withDefaults(node, value ?? {}) };
}
