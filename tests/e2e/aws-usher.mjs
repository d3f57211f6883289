// aws-usher.mjs — what the e2e tests of usher with STAGE_PROVIDER=aws
// share: the environment pointing usher at a fake IVS (tests/fake-ivs), and
// one signing key for several processes, so they import one public key
// between them (a region holds 3).
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// usher's environment for the fake IVS, the stream named `stream`.
export const awsEnv = (fake, stream, extra = {}) => ({ STAGE_PROVIDER: 'aws', STREAM_NAME: stream, ...fake.env(),
  AWS_EC2_METADATA_DISABLED: 'true', ...extra });

// A P-384 private key in a file of its own: {file, close()} (close removes it).
export function sharedKey() {
  const dir = mkdtempSync(join(tmpdir(), 'usher-key-'));
  const file = join(dir, 'key.pem');
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { file, close: () => rmSync(dir, { recursive: true, force: true }) };
}

// Closes each of things (ushers, Redis, the fake, a key) that was made, in turn.
export async function closeAll(...things) {
  for (const t of things) await t?.close();
}
