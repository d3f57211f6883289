// model.mjs — the IVS Real-Time API model (../shared/aws/ivs-realtime-
// service-2.json, botocore's service-2.json) loaded for the fake IVS: which
// operations exist, and a validator of request bodies against the input
// shapes (required members, unknown members, types, lengths, ranges,
// patterns, enums), answering the message a ValidationException carries.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const MODEL_PATH = resolve(here, '../../../shared/aws/ivs-realtime-service-2.json');

export function loadModel(path = MODEL_PATH) {
  const model = JSON.parse(readFileSync(path, 'utf8'));
  const patterns = new Map();
  const regex = (p) => {
    if (!patterns.has(p)) patterns.set(p, new RegExp(`^(?:${p})$`));
    return patterns.get(p);
  };

  // Returns an error message, or null when `value` fits shape `name`.
  function check(name, value, where) {
    const s = model.shapes[name];
    switch (s.type) {
      case 'structure': {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${where} must be an object`;
        for (const r of s.required || [])
          if (value[r] === undefined || value[r] === null) return `${where}.${r} is required`;
        for (const [k, v] of Object.entries(value)) {
          const m = s.members[k];
          if (!m || m.location) return `${where}.${k} is not a member of ${name}`;
          if (v === null) continue;
          const e = check(m.shape, v, `${where}.${k}`);
          if (e) return e;
        }
        return null;
      }
      case 'list':
        if (!Array.isArray(value)) return `${where} must be a list`;
        if (s.min !== undefined && value.length < s.min) return `${where} needs at least ${s.min} items`;
        if (s.max !== undefined && value.length > s.max) return `${where} allows at most ${s.max} items`;
        for (let i = 0; i < value.length; i++) {
          const e = check(s.member.shape, value[i], `${where}[${i}]`);
          if (e) return e;
        }
        return null;
      case 'map': {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${where} must be a map`;
        const entries = Object.entries(value);
        if (s.min !== undefined && entries.length < s.min) return `${where} needs at least ${s.min} entries`;
        if (s.max !== undefined && entries.length > s.max) return `${where} allows at most ${s.max} entries`;
        for (const [k, v] of entries) {
          const e = check(s.key.shape, k, `${where} key`) || check(s.value.shape, v, `${where}.${k}`);
          if (e) return e;
        }
        return null;
      }
      case 'string':
        if (typeof value !== 'string') return `${where} must be a string`;
        if (s.min !== undefined && value.length < s.min) return `${where} must have at least ${s.min} characters`;
        if (s.max !== undefined && value.length > s.max) return `${where} must have at most ${s.max} characters`;
        if (s.enum && !s.enum.includes(value)) return `${where} must be one of ${s.enum.join(', ')}`;
        if (s.pattern && !regex(s.pattern).test(value)) return `${where} must match ${s.pattern}`;
        return null;
      case 'integer': case 'long':
        if (!Number.isInteger(value)) return `${where} must be an integer`;
        if (s.min !== undefined && value < s.min) return `${where} must be at least ${s.min}`;
        if (s.max !== undefined && value > s.max) return `${where} must be at most ${s.max}`;
        return null;
      case 'boolean':
        return typeof value === 'boolean' ? null : `${where} must be a boolean`;
      case 'timestamp':
        return typeof value === 'string' || typeof value === 'number' ? null : `${where} must be a timestamp`;
      default:
        return null;
    }
  }

  return {
    model,
    hasOperation: (op) => Object.hasOwn(model.operations, op),
    // The validation error message for `body` as the input of `op`, or null.
    validateInput(op, body) {
      const input = model.operations[op].input;
      if (!input) return null;
      return check(input.shape, body, input.shape);
    },
    // The same check of an answer body against the output shape of `op`.
    validateOutput(op, body) {
      const output = model.operations[op].output;
      if (!output) return Object.keys(body).length ? `${op} has no output` : null;
      return check(output.shape, body, output.shape);
    },
  };
}
