// fake-ivs.mjs — a fake Amazon IVS Real-Time control plane for the tests:
// an HTTP server on loopback that speaks the service's rest-json protocol
// (POST /{Operation}, JSON in and out, errors as x-amzn-ErrorType + JSON
// message), checks every request's SigV4 signature with the test's own
// signer (sigv4.mjs, node:crypto; nothing shared with usher's C), validates
// inputs and its own outputs against the API model (model.mjs), keeps stages,
// sessions, participants, replications and public keys in memory, and
// enforces the limits usher must live with (/work/shared/aws/README.md):
// call rates (429), 5 concurrent replications per participant id (402), a
// replica is no replication source (unless replicaAsSource), 3 public keys
// per region, N stages.
//
// Tests drive it through the object start() returns: inspect state, inject
// faults (fail, throttle, delay, act-then-drop-the-answer), simulate
// participants joining, publishing and leaving. See README.md here.
import http from 'node:http';
import { randomBytes, createPublicKey, createHash } from 'node:crypto';
import { verify, SigV4Error } from './sigv4.mjs';
import { loadModel } from './model.mjs';

// Call rates per account and region (IVS Real-Time quotas; replication has
// no published figure, 5/s assumed as in ../shared/aws/README.md).
export const DEFAULT_RATES = { stage: 5, participant: 5, replication: 5, key: 3, token: 50, tag: 10, other: 10 };

export const OPERATION_CLASS = {
  CreateStage: 'stage', GetStage: 'stage', ListStages: 'stage', UpdateStage: 'stage', DeleteStage: 'stage',
  ListStageSessions: 'stage', GetStageSession: 'stage',
  ListParticipants: 'participant', GetParticipant: 'participant', DisconnectParticipant: 'participant',
  ListParticipantEvents: 'participant',
  StartParticipantReplication: 'replication', StopParticipantReplication: 'replication',
  ListParticipantReplicas: 'replication',
  GetPublicKey: 'key', ImportPublicKey: 'key', ListPublicKeys: 'key', DeletePublicKey: 'key',
  CreateParticipantToken: 'token',
  TagResource: 'tag', UntagResource: 'tag', ListTagsForResource: 'tag',
};

// HTTP status of each error code (the model's httpStatusCode; throttling
// and signature codes as AWS answers them).
export const ERROR_STATUS = {
  ValidationException: 400, SerializationException: 400, AccessDeniedException: 403, PendingVerification: 403,
  ResourceNotFoundException: 404, ConflictException: 409, ServiceQuotaExceededException: 402,
  InternalServerException: 500, TooManyRequestsException: 429, ThrottlingException: 429,
  InvalidSignatureException: 403, UnrecognizedClientException: 403, IncompleteSignatureException: 403,
  MissingAuthenticationTokenException: 403, UnknownOperationException: 404, NotImplemented: 501,
  ServiceUnavailableException: 503, ExpiredTokenException: 403,
};

export class IvsError extends Error {
  constructor(code, message, status = ERROR_STATUS[code] || 400) {
    super(message); this.code = code; this.status = status;
  }
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
function randomId(n, alphabet = ALNUM) {
  let s = '';
  for (const b of randomBytes(n)) s += alphabet[b % alphabet.length];
  return s;
}
const iso = (ms) => new Date(ms).toISOString();
const clone = (v) => (v === undefined ? undefined : structuredClone(v));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PARTICIPANT_ID_RE = /^[a-zA-Z0-9-]*$/;

const validation = (m) => new IvsError('ValidationException', m);
const notFound = (m) => new IvsError('ResourceNotFoundException', m);
const conflict = (m) => new IvsError('ConflictException', m);
const quota = (m) => new IvsError('ServiceQuotaExceededException', m);

export class FakeIvs {
  // opts: {accessKeyId, secretAccessKey, sessionToken, region, accountId,
  // maxStages (1000), maxPublicKeys (3), maxReplicationsPerParticipant (5),
  // replicaAsSource (false: a replica is refused as a replication source;
  // settable later too: `fake.replicaAsSource = true`),
  // rates ({class: calls/s}), rateScope ('class' | 'operation'),
  // maxSkewMs (300000), sessionLingerMs (0), pageLimit (none: at most
  // this many items a page, whatever maxResults asks, as a service may
  // answer fewer with a nextToken), modelPath}
  constructor(opts = {}) {
    this.region = opts.region || 'us-east-1';
    this.accountId = opts.accountId || '123456789012';
    this.maxStages = opts.maxStages ?? 1000;
    this.maxPublicKeys = opts.maxPublicKeys ?? 3;
    this.maxReplicationsPerParticipant = opts.maxReplicationsPerParticipant ?? 5;
    this.replicaAsSource = opts.replicaAsSource ?? false;
    this.rates = { ...DEFAULT_RATES, ...(opts.rates || {}) };
    this.rateScope = opts.rateScope || 'class';
    this.maxSkewMs = opts.maxSkewMs ?? 5 * 60 * 1000;
    this.sessionLingerMs = opts.sessionLingerMs ?? 0;
    this.pageLimit = opts.pageLimit ?? Infinity;
    this.clockOffsetMs = 0;
    this.credentialTtlMs = opts.credentialTtlMs ?? 60 * 60 * 1000;
    this.containerAuthToken = opts.containerAuthToken || 'fake-container-auth-token';
    this.imdsRole = 'usher-role';
    this.imdsTokens = new Map();
    this.api = loadModel(opts.modelPath);
    this.credentials = new Map();
    this.addCredentials({
      accessKeyId: opts.accessKeyId || 'AKIDFAKEIVS',
      secretAccessKey: opts.secretAccessKey || 'fake-ivs-secret-key',
      sessionToken: opts.sessionToken,
    });
    this.server = null;
    this.reset();
  }

  // ---- lifecycle ----------------------------------------------------------

  async listen(port = 0) {
    this.server = http.createServer((req, res) => {
      this.#handle(req, res).catch((e) => {
        console.error('fake-ivs: handler crashed', e);
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async close() {
    if (!this.server) return;
    const s = this.server; this.server = null;
    for (const t of this.timers) clearTimeout(t);
    s.closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }

  // Forgets every stage, key, replication, fault, call and rate window.
  // Credentials, limits and rates stay as configured.
  reset() {
    for (const t of this.timers || []) clearTimeout(t);
    this.timers = new Set();
    this.stagesByArn = new Map();
    this.keysByArn = new Map();
    this.activeReplications = [];
    this.stoppedReplications = [];
    this.calls = [];
    this.faults = [];
    this.windows = new Map();
    this.credentialFetches = [];
  }

  // ---- credentials, rates, clock --------------------------------------------

  // Accepts one more credential set; `expiresAt` (ms) makes it temporary:
  // after it, calls signed with it get 403 ExpiredTokenException.
  addCredentials({ accessKeyId, secretAccessKey, sessionToken, expiresAt }) {
    this.credentials.set(accessKeyId, { accessKeyId, secretAccessKey, sessionToken, expiresAt });
  }
  #lookup(accessKeyId) {
    const c = this.credentials.get(accessKeyId);
    if (c?.expiresAt !== undefined && this.now() >= c.expiresAt)
      throw new SigV4Error('ExpiredTokenException', `The security token included in the request is expired (${accessKeyId})`);
    return c;
  }
  // New temporary credentials, accepted from now until they expire in
  // `ttlMs` (default this.credentialTtlMs): {accessKeyId, secretAccessKey,
  // sessionToken, expiresAt}. The credential endpoints below hand these out.
  issueTemporaryCredentials({ ttlMs = this.credentialTtlMs } = {}) {
    const c = { accessKeyId: 'ASIA' + randomId(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'), secretAccessKey: randomId(40),
      sessionToken: randomId(64), expiresAt: this.now() + ttlMs };
    this.addCredentials(c);
    return { ...c };
  }
  // The environment that points an AWS client (usher) at this fake with the
  // first configured credentials: AWS_ENDPOINT_URL, AWS_REGION,
  // AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, when
  // configured, AWS_SESSION_TOKEN.
  env() {
    const c = this.credentials.values().next().value;
    const e = { AWS_ENDPOINT_URL: this.url, AWS_REGION: this.region, AWS_DEFAULT_REGION: this.region };
    if (c) Object.assign(e, { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey });
    if (c?.sessionToken) e.AWS_SESSION_TOKEN = c.sessionToken;
    return e;
  }
  // The environment for the container credentials route instead of keys:
  // AWS_CONTAINER_CREDENTIALS_FULL_URI (+ AWS_CONTAINER_AUTHORIZATION_TOKEN).
  containerEnv() {
    return { AWS_ENDPOINT_URL: this.url, AWS_REGION: this.region, AWS_DEFAULT_REGION: this.region,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${this.url}/_fake/container-credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: this.containerAuthToken };
  }
  removeCredentials(accessKeyId) { this.credentials.delete(accessKeyId); }
  // Replaces all accepted credentials by this one set.
  setCredentials(creds) { this.credentials.clear(); this.addCredentials(creds); }
  // calls/s for a class ('stage', 'participant', 'replication', 'key', ...)
  // or, with rateScope 'operation', for one operation name.
  setRate(classOrOperation, perSecond) { this.rates[classOrOperation] = perSecond; }
  // The fake's clock runs `ms` ahead of the machine's (signature skew tests).
  setClockOffset(ms) { this.clockOffsetMs = ms; }

  // ---- fault injection ------------------------------------------------------
  // `operation` is an operation name or '*' for every operation.

  // The next `count` calls answer `code` (status from the code unless given)
  // without acting.
  failNext(operation, { status, code = 'InternalServerException', count = 1, message } = {}) {
    this.faults.push({ kind: 'fail', operation, count, code, status: status ?? ERROR_STATUS[code] ?? 500,
      message: message || `injected ${code}` });
  }
  // The next `count` calls answer 429 TooManyRequestsException.
  throttle(operation, count = 1) {
    this.failNext(operation, { code: 'TooManyRequestsException', status: 429, count, message: 'Rate exceeded (injected)' });
  }
  // The next `count` calls act, then the connection is destroyed unanswered.
  dropAnswer(operation, { count = 1 } = {}) { this.faults.push({ kind: 'drop', operation, count }); }
  // The next `count` calls (all, by default) wait `ms` before acting.
  // delay(operation, 0) removes the delay. A call it held is marked
  // `delayed` in calls; release() ends every wait under way at once.
  delay(operation, ms, { count = Infinity } = {}) {
    this.faults = this.faults.filter((f) => !(f.kind === 'delay' && f.operation === operation));
    if (ms > 0) this.faults.push({ kind: 'delay', operation, count, ms });
  }
  release() {
    for (const end of this.#held) end();
    this.#held.clear();
  }
  #held = new Set();
  #hold(ms) {
    return new Promise((resolve) => {
      const end = () => { clearTimeout(timer); this.#held.delete(end); resolve(); };
      const timer = setTimeout(end, ms);
      this.#held.add(end);
    });
  }
  // The next `count` calls (all, by default) act, then answer what `answer`
  // says instead of the real output, as a broken or hostile server would:
  // `answer(out, input)` → {status (200), headers ({}; content-type JSON),
  // body (string or Buffer; an object is sent as JSON; default: out),
  // bytes (send this many bytes of `body` repeated, without building them),
  // dripMs (one byte every dripMs ms), hold (send the headers and never end)}.
  // `out` is the real output ({message} when the operation failed).
  rewrite(operation, answer, { count = Infinity } = {}) {
    this.faults.push({ kind: 'rewrite', operation, count, answer });
  }
  clearFaults() { this.faults = []; }

  #takeFault(kind, operation) {
    const f = this.faults.find((x) => x.kind === kind && (x.operation === operation || x.operation === '*'));
    if (!f) return null;
    if (--f.count <= 0) this.faults.splice(this.faults.indexOf(f), 1);
    return f;
  }

  // ---- state inspection (copies; changing them changes nothing) ---------------

  stages() { return [...this.stagesByArn.values()].map((s) => this.#stageView(s)); }
  stage(arn) { const s = this.stagesByArn.get(arn); return s ? this.#stageView(s) : undefined; }
  replications() { return clone(this.activeReplications); }
  publicKeys() { return clone([...this.keysByArn.values()]); }
  // Participants of a stage's session (the active one unless sessionId given),
  // with the internal `publishing` flag (published now, not just once).
  participants(stageArn, { sessionId } = {}) {
    const s = this.#session(this.#stageOr404(stageArn), sessionId);
    return s ? clone([...s.participants.values()]) : [];
  }
  sessions(stageArn) {
    return this.#stageOr404(stageArn).sessions.map((x) => ({ sessionId: x.sessionId, startTime: x.startTime, endTime: x.endTime }));
  }
  // The call log: [{operation, time (ms), status, code?, accessKeyId?, input?, dropped?}].
  callsOf(operation) { return this.calls.filter((c) => c.operation === operation); }
  // Resolves with the calls of `operation` once `count` of them (with `status`
  // if given) are logged; rejects after `timeoutMs`.
  async waitForCall(operation, { count = 1, status, timeoutMs = 5000 } = {}) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const seen = this.callsOf(operation).filter((c) => c.status !== 0 && (status === undefined || c.status === status));
      if (seen.length >= count) return seen;
      if (Date.now() > until) throw new Error(`fake IVS: ${count} ${operation} call(s)${status ? ` answered ${status}` : ''} not seen in ${timeoutMs} ms (saw ${seen.length})`);
      await sleep(20);
    }
  }
  snapshot() {
    return {
      stages: this.stages().map((s) => ({ ...s, sessions: this.sessions(s.arn), participants: this.participants(s.arn) })),
      replications: this.replications(), publicKeys: this.publicKeys(), calls: clone(this.calls), faults: clone(this.faults),
    };
  }

  // Runs an operation directly (no signature, rate limit or fault), e.g. to
  // create the master stage before usher starts. Returns the output body;
  // throws IvsError.
  invoke(operation, input = {}) {
    if (!this.api.hasOperation(operation)) throw new IvsError('UnknownOperationException', `unknown operation ${operation}`);
    const err = this.api.validateInput(operation, input);
    if (err) throw validation(err);
    const handler = this.ops[operation];
    if (!handler) throw new IvsError('NotImplemented', `the fake IVS does not implement ${operation}`);
    const out = handler.call(this, clone(input)) || {};
    const bad = this.api.validateOutput(operation, out);
    if (bad) throw new IvsError('InternalServerException', `fake IVS answer breaks the model: ${bad}`);
    return out;
  }
  createStage(input = {}) { return this.invoke('CreateStage', input).stage; }
  importPublicKey(input) { return this.invoke('ImportPublicKey', input).publicKey; }

  // ---- participant simulation ------------------------------------------------

  // A participant joins the stage (starting a session if none is active).
  // {participantId (random if absent), userId, published, attributes,
  // replica: source stage ARN or true (joins as a REPLICA)}. Returns it.
  connectParticipant(stageArn, { participantId = randomId(12), userId, published = false, attributes = {}, replica } = {}) {
    const stage = this.#stageOr404(stageArn);
    if (!PARTICIPANT_ID_RE.test(participantId)) throw validation(`participantId ${participantId} must match [a-zA-Z0-9-]*`);
    const session = this.#activeSession(stage);
    const old = session.participants.get(participantId);
    if (old && old.state === 'CONNECTED') throw conflict(`participant ${participantId} is already connected`);
    const p = old || { participantId, firstJoinTime: iso(this.now()), published: false, recordingState: 'DISABLED' };
    Object.assign(p, { state: 'CONNECTED', attributes, publishing: !!published, replicationType: replica ? 'REPLICA' : 'NONE' });
    if (userId !== undefined) p.userId = userId;
    if (published) p.published = true;
    if (typeof replica === 'string') p.sourceStageArn = replica;
    session.participants.set(participantId, p);
    return clone(p);
  }
  // The participant leaves: its replications stop, the session ends if it
  // was the last one connected.
  disconnectParticipant(stageArn, participantId) {
    this.#disconnect(this.#stageOr404(stageArn), participantId);
  }
  publish(stageArn, participantId) {
    const p = this.#connected(this.#stageOr404(stageArn), participantId);
    p.publishing = true; p.published = true;
  }
  // Stops publishing (`published` stays true: it means "published during the
  // session", as ListParticipants' filterByPublished); replications from it stop.
  unpublish(stageArn, participantId) {
    const stage = this.#stageOr404(stageArn);
    this.#connected(stage, participantId).publishing = false;
    this.#stopReplicationsWhere((r) => r.sourceStageArn === stage.arn && r.participantId === participantId);
  }
  // The publisher leaves and joins again: IVS gives a participant a new id
  // each time it joins. The old participant is DISCONNECTED and its
  // replications stop, unless `keepReplications` (as if IVS were slow to
  // stop them, or within a reconnect window); the new one joins with the
  // same userId and attributes, publishing. Returns the new participant.
  rejoin(stageArn, participantId, { newParticipantId = randomId(12), keepReplications = false } = {}) {
    // The new one joins first: a quick return keeps the session (IVS ends
    // one minutes after the last participant left).
    const stage = this.#stageOr404(stageArn);
    const old = this.#connected(stage, participantId);
    const fresh = this.connectParticipant(stageArn, { participantId: newParticipantId, userId: old.userId,
      published: true, attributes: clone(old.attributes) });
    if (keepReplications) {
      old.state = 'DISCONNECTED'; old.publishing = false;
    } else {
      this.#disconnect(stage, participantId);
    }
    return fresh;
  }
  // Ends the stage's active session now (everyone in it disconnected).
  endSession(stageArn) {
    const stage = this.#stageOr404(stageArn);
    const s = stage.activeSession;
    if (!s) return;
    for (const p of s.participants.values()) if (p.state === 'CONNECTED') this.#disconnect(stage, p.participantId);
    this.#endSession(stage);
  }

  now() { return Date.now() + this.clockOffsetMs; }

  // ---- HTTP ---------------------------------------------------------------

  async #handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const q = req.url.indexOf('?');
    const rawPath = q < 0 ? req.url : req.url.slice(0, q);
    if (rawPath.startsWith('/_fake/')) return this.#control(req, res, rawPath);
    if (rawPath.startsWith('/latest/')) return this.#imds(req, res, rawPath);
    const operation = rawPath.slice(1);
    const entry = { operation, time: Date.now(), status: 0 };
    this.calls.push(entry);
    let status = 200; let out = {}; let code; let drop = false; let rewrite = null;
    try {
      const headers = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
      entry.accessKeyId = verify({ method: req.method, rawPath, rawQuery: q < 0 ? '' : req.url.slice(q + 1), headers, body },
        { region: this.region, service: 'ivs', lookup: (id) => this.#lookup(id), now: this.now(), maxSkewMs: this.maxSkewMs });
      if (req.method !== 'POST' || !this.api.hasOperation(operation))
        throw new IvsError('UnknownOperationException', `no operation ${req.method} ${rawPath}`);
      this.#rateLimit(operation);
      const fail = this.#takeFault('fail', operation);
      if (fail) throw new IvsError(fail.code, fail.message, fail.status);
      drop = !!this.#takeFault('drop', operation);
      rewrite = this.#takeFault('rewrite', operation);
      const slow = this.#takeFault('delay', operation);
      if (slow) {
        entry.delayed = true;            // a test may wait for this call's answer to be held
        await this.#hold(slow.ms);
      }
      let input;
      try { input = body.length ? JSON.parse(body.toString('utf8')) : {}; } catch {
        throw new IvsError('SerializationException', 'the body is not JSON');
      }
      entry.input = input;
      out = this.invoke(operation, input);
    } catch (e) {
      if (!(e instanceof IvsError || e instanceof SigV4Error)) {
        console.error('fake-ivs:', e);
        e = new IvsError('InternalServerException', String(e.message));
      }
      status = e.status; code = e.code; out = { message: e.message, exceptionMessage: e.message };
    }
    Object.assign(entry, { status }, code && { code });
    if (drop) {
      entry.dropped = true;
      req.socket.destroy();
      return;
    }
    if (rewrite) return this.#rewritten(res, rewrite.answer(out, entry.input), out, entry);
    const text = JSON.stringify(out);
    const h = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': randomId(16) };
    if (code) h['x-amzn-errortype'] = code;
    res.writeHead(status, h).end(text);
  }

  // Sends a rewrite fault's answer a (see rewrite()).
  async #rewritten(res, a, out, entry) {
    const status = a.status ?? 200;
    let body = a.body === undefined ? out : a.body;
    if (!(typeof body === 'string' || Buffer.isBuffer(body))) body = JSON.stringify(body);
    body = Buffer.from(body);
    entry.rewritten = status;
    const total = a.bytes ?? body.length;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': total, ...a.headers });
    if (a.hold) { res.flushHeaders(); return; }
    let sent = 0;
    while (sent < total && !res.destroyed) {
      const n = a.dripMs ? 1 : Math.min(total - sent, 65536);
      const chunk = Buffer.alloc(n);
      for (let i = 0; i < n; i++) chunk[i] = body[(sent + i) % body.length];
      if (!res.write(chunk)) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
      sent += n;
      if (a.dripMs) await sleep(a.dripMs);
    }
    if (!res.destroyed) res.end();
  }

  // GET /_fake/state: the snapshot as JSON, for a human with curl.
  // GET /_fake/container-credentials: the ECS container credentials endpoint
  // (Authorization: containerAuthToken), new temporary credentials each call.
  #control(req, res, path) {
    const json = (status, v) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v, null, 2));
    if (req.method === 'GET' && path === '/_fake/state') return json(200, this.snapshot());
    if (req.method === 'GET' && path === '/_fake/container-credentials') {
      const rec = { source: 'container', time: Date.now() };
      this.credentialFetches.push(rec);
      if (req.headers.authorization !== this.containerAuthToken) return json(401, { message: 'bad authorization token' });
      const c = this.issueTemporaryCredentials();
      rec.accessKeyId = c.accessKeyId;
      return json(200, { AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, Token: c.sessionToken,
        Expiration: iso(c.expiresAt), RoleArn: `arn:aws:iam::${this.accountId}:role/${this.imdsRole}` });
    }
    res.writeHead(404).end();
  }

  // EC2 instance metadata, IMDSv2 only (AWS_EC2_METADATA_SERVICE_ENDPOINT =
  // this.url): PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds)
  // gives a session token; GET /latest/meta-data/iam/security-credentials/
  // with it names the role, and .../{role} gives temporary credentials.
  #imds(req, res, path) {
    const text = (status, v) => res.writeHead(status, { 'content-type': 'text/plain' }).end(v);
    if (req.method === 'PUT' && path === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return text(400, 'bad token ttl');
      const token = randomId(44);
      this.imdsTokens.set(token, Date.now() + ttl * 1000);
      return text(200, token);
    }
    const base = '/latest/meta-data/iam/security-credentials/';
    if (req.method !== 'GET' || !path.startsWith(base)) return text(404, 'not found');
    const rec = { source: 'imds', time: Date.now() };
    this.credentialFetches.push(rec);
    const exp = this.imdsTokens.get(req.headers['x-aws-ec2-metadata-token']);
    if (!exp || Date.now() >= exp) return text(401, 'IMDSv2 session token missing or expired');
    const role = path.slice(base.length);
    if (role === '') return text(200, this.imdsRole);
    if (role !== this.imdsRole) return text(404, 'no such role');
    const c = this.issueTemporaryCredentials();
    rec.accessKeyId = c.accessKeyId;
    return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Code: 'Success',
      LastUpdated: iso(this.now()), Type: 'AWS-HMAC', AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey,
      Token: c.sessionToken, Expiration: iso(c.expiresAt) }));
  }

  // Sliding one-second window per class (or per operation), shared by every
  // caller; a refused call does not count.
  #rateLimit(operation) {
    const cls = OPERATION_CLASS[operation] || 'other';
    const key = this.rateScope === 'operation' ? operation : cls;
    const limit = this.rates[key] ?? this.rates[cls] ?? this.rates.other;
    const now = Date.now();
    const w = (this.windows.get(key) || []).filter((t) => now - t < 1000);
    this.windows.set(key, w);
    if (w.length >= limit) throw new IvsError('TooManyRequestsException', `Rate exceeded: ${limit} calls/s for ${key} operations`);
    w.push(now);
  }

  // ---- model of stages, sessions, participants ------------------------------

  #stageView(s) {
    const v = { arn: s.arn, name: s.name, tags: clone(s.tags), endpoints: clone(s.endpoints) };
    if (s.activeSession) v.activeSessionId = s.activeSession.sessionId;
    if (s.autoParticipantRecordingConfiguration) v.autoParticipantRecordingConfiguration = clone(s.autoParticipantRecordingConfiguration);
    return v;
  }
  #stageSummary(s) {
    const v = { arn: s.arn, name: s.name, tags: clone(s.tags) };
    if (s.activeSession) v.activeSessionId = s.activeSession.sessionId;
    return v;
  }
  #stageOr404(arn) {
    const s = this.stagesByArn.get(arn);
    if (!s) throw notFound(`stage ${arn} not found`);
    return s;
  }
  #session(stage, sessionId) {
    if (sessionId === undefined) return stage.activeSession;
    return stage.sessions.find((x) => x.sessionId === sessionId);
  }
  #activeSession(stage) {
    if (stage.lingerTimer) { clearTimeout(stage.lingerTimer); this.timers.delete(stage.lingerTimer); stage.lingerTimer = null; }
    if (!stage.activeSession) {
      const s = { sessionId: 'st-' + randomId(13), startTime: iso(this.now()), participants: new Map() };
      stage.sessions.push(s);
      stage.activeSession = s;
    }
    return stage.activeSession;
  }
  #endSession(stage) {
    if (!stage.activeSession) return;
    stage.activeSession.endTime = iso(this.now());
    stage.activeSession = null;
  }
  // A session ends `sessionLingerMs` after its last participant left.
  #endSessionIfEmpty(stage) {
    const s = stage.activeSession;
    if (!s || [...s.participants.values()].some((p) => p.state === 'CONNECTED')) return;
    if (this.sessionLingerMs <= 0) return this.#endSession(stage);
    if (stage.lingerTimer) return;
    stage.lingerTimer = setTimeout(() => {
      this.timers.delete(stage.lingerTimer); stage.lingerTimer = null;
      if (stage.activeSession === s && ![...s.participants.values()].some((p) => p.state === 'CONNECTED')) this.#endSession(stage);
    }, this.sessionLingerMs);
    stage.lingerTimer.unref();
    this.timers.add(stage.lingerTimer);
  }
  #connected(stage, participantId) {
    const p = stage.activeSession?.participants.get(participantId);
    if (!p || p.state !== 'CONNECTED') throw notFound(`participant ${participantId} is not connected to stage ${stage.arn}`);
    return p;
  }
  #disconnect(stage, participantId) {
    const p = this.#connected(stage, participantId);
    p.state = 'DISCONNECTED'; p.publishing = false;
    this.#stopReplicationsWhere((r) => r.participantId === participantId
      && (r.sourceStageArn === stage.arn || r.destinationStageArn === stage.arn));
    this.#endSessionIfEmpty(stage);
  }
  // Stops the matching replications: each replica leaves its stage.
  #stopReplicationsWhere(match) {
    const stopping = this.activeReplications.filter(match);
    this.activeReplications = this.activeReplications.filter((r) => !match(r));
    for (const r of stopping) {
      this.stoppedReplications.push({ ...r, replicationState: 'STOPPED' });
      const dest = this.stagesByArn.get(r.destinationStageArn);
      const replica = dest?.activeSession?.participants.get(r.participantId);
      if (replica && replica.replicationType === 'REPLICA') {
        replica.replicationState = 'STOPPED';
        if (replica.state === 'CONNECTED') {
          replica.state = 'DISCONNECTED'; replica.publishing = false;
          // A replica that left was the source of chained replications
          // (replicaAsSource): they stop too.
          this.#stopReplicationsWhere((x) => x.sourceStageArn === r.destinationStageArn && x.participantId === r.participantId);
          this.#endSessionIfEmpty(dest);
        }
      }
      const src = this.stagesByArn.get(r.sourceStageArn);
      const source = src?.activeSession?.participants.get(r.participantId);
      if (source?.replicationType === 'SOURCE' && !this.activeReplications.some((x) => x.sourceStageArn === r.sourceStageArn && x.participantId === r.participantId)) {
        source.replicationType = 'NONE';
      }
    }
  }

  #page(items, { nextToken, maxResults }, kind, defaultMax = 50) {
    let offset = 0;
    if (nextToken) {
      let t;
      try { t = JSON.parse(Buffer.from(nextToken, 'base64').toString('utf8')); } catch { t = null; }
      if (!t || t.k !== kind || !Number.isInteger(t.o) || t.o < 0) throw validation(`nextToken ${nextToken} is not a token of ${kind}`);
      offset = t.o;
    }
    const n = Math.min(maxResults ?? defaultMax, this.pageLimit);
    const page = items.slice(offset, offset + n);
    const next = offset + n < items.length ? Buffer.from(JSON.stringify({ k: kind, o: offset + n })).toString('base64') : undefined;
    return { page, next };
  }

  #participantSummary(p) {
    const v = { participantId: p.participantId, state: p.state, firstJoinTime: p.firstJoinTime, published: p.published,
      recordingState: p.recordingState, replicationType: p.replicationType };
    if (p.userId !== undefined) v.userId = p.userId;
    for (const k of ['replicationState', 'sourceStageArn', 'sourceSessionId']) if (p[k] !== undefined) v[k] = p[k];
    return v;
  }

  // ---- operations: each takes the validated input, returns the output body --

  ops = {
    CreateStage(input) {
      if (this.stagesByArn.size >= this.maxStages) throw quota(`stages per region: ${this.maxStages} reached`);
      const id = randomId(12);
      let whipHost;
      do whipHost = randomId(12, LOWER); while (whipHost.toLowerCase() === id.toLowerCase());
      const stage = {
        id, arn: `arn:aws:ivs:${this.region}:${this.accountId}:stage/${id}`, name: input.name ?? '',
        tags: input.tags || {}, sessions: [], activeSession: null, lingerTimer: null,
        autoParticipantRecordingConfiguration: input.autoParticipantRecordingConfiguration,
        endpoints: {
          events: 'wss://global.events.live-video.net',
          whip: `https://${whipHost}.global-bm.whip.live-video.net`,
          rtmp: `rtmp://${whipHost}.global-contribute-staging.live-video.net/app/`,
          rtmps: `rtmps://${whipHost}.global-contribute.live-video.net:443/app/`,
        },
      };
      this.stagesByArn.set(stage.arn, stage);
      const out = { stage: this.#stageView(stage) };
      if (input.participantTokenConfigurations) {
        out.participantTokens = input.participantTokenConfigurations.map((c) => {
          const duration = c.duration ?? 720;
          const t = { participantId: randomId(12), token: randomId(64), duration,
            capabilities: c.capabilities || ['PUBLISH', 'SUBSCRIBE'], expirationTime: iso(this.now() + duration * 60000) };
          if (c.userId !== undefined) t.userId = c.userId;
          if (c.attributes) t.attributes = c.attributes;
          return t;
        });
      }
      return out;
    },
    GetStage({ arn }) { return { stage: this.#stageView(this.#stageOr404(arn)) }; },
    ListStages(input) {
      const { page, next } = this.#page([...this.stagesByArn.values()], input, 'stages');
      return { stages: page.map((s) => this.#stageSummary(s)), ...(next && { nextToken: next }) };
    },
    UpdateStage({ arn, name, autoParticipantRecordingConfiguration }) {
      const s = this.#stageOr404(arn);
      if (name !== undefined) s.name = name;
      if (autoParticipantRecordingConfiguration) s.autoParticipantRecordingConfiguration = autoParticipantRecordingConfiguration;
      return { stage: this.#stageView(s) };
    },
    DeleteStage({ arn }) {
      const s = this.#stageOr404(arn);
      this.#stopReplicationsWhere((r) => r.sourceStageArn === arn || r.destinationStageArn === arn);
      this.stoppedReplications = this.stoppedReplications.filter((r) => r.sourceStageArn !== arn && r.destinationStageArn !== arn);
      if (s.lingerTimer) { clearTimeout(s.lingerTimer); this.timers.delete(s.lingerTimer); }
      this.stagesByArn.delete(arn);
      return {};
    },

    StartParticipantReplication({ sourceStageArn, destinationStageArn, participantId, reconnectWindowSeconds, attributes }) {
      if (sourceStageArn === destinationStageArn) throw validation('source and destination stage are the same');
      const src = this.#stageOr404(sourceStageArn);
      const dst = this.#stageOr404(destinationStageArn);
      const p = src.activeSession?.participants.get(participantId);
      if (!p || p.state !== 'CONNECTED' || !p.publishing)
        throw validation(`participant ${participantId} is not publishing in source stage ${sourceStageArn}`);
      // Whether IVS takes a replica as a source is not documented (a
      // replica keeps the source's participant id; ../shared/aws/README.md
      // says most likely not). The real answer is unknown: this 400
      // ValidationException naming the participant is the most plausible
      // one. `replicaAsSource` makes the fake take it instead (chained: it
      // draws on the same per-participant quota below).
      if (p.replicationType === 'REPLICA' && !this.replicaAsSource)
        throw validation(`participant ${participantId} is a replica in stage ${sourceStageArn} and cannot be a replication source`);
      if (this.activeReplications.some((r) => r.sourceStageArn === sourceStageArn && r.destinationStageArn === destinationStageArn && r.participantId === participantId))
        throw conflict(`participant ${participantId} is already replicated from ${sourceStageArn} to ${destinationStageArn}`);
      const inDst = dst.activeSession?.participants.get(participantId);
      if (inDst && inDst.state === 'CONNECTED') throw conflict(`participant ${participantId} is already connected to ${destinationStageArn}`);
      const n = this.activeReplications.filter((r) => r.participantId === participantId).length;
      if (n >= this.maxReplicationsPerParticipant)
        throw quota(`concurrent participant replications per participant: ${this.maxReplicationsPerParticipant} reached for ${participantId}`);
      const replica = this.connectParticipant(destinationStageArn, { participantId, userId: p.userId, published: true, attributes: attributes || p.attributes, replica: sourceStageArn });
      const dp = dst.activeSession.participants.get(participantId);
      Object.assign(dp, { replicationState: 'ACTIVE', sourceSessionId: src.activeSession.sessionId });
      if (p.replicationType !== 'REPLICA') p.replicationType = 'SOURCE';
      this.activeReplications.push({ sourceStageArn, destinationStageArn, participantId,
        sourceSessionId: src.activeSession.sessionId, destinationSessionId: dst.activeSession.sessionId,
        replicationState: 'ACTIVE', reconnectWindowSeconds: reconnectWindowSeconds ?? 0, startTime: replica.firstJoinTime });
      return {};
    },
    StopParticipantReplication({ sourceStageArn, destinationStageArn, participantId }) {
      const match = (r) => r.sourceStageArn === sourceStageArn && r.destinationStageArn === destinationStageArn && r.participantId === participantId;
      if (!this.activeReplications.some(match))
        throw notFound(`no replication of ${participantId} from ${sourceStageArn} to ${destinationStageArn}`);
      this.#stopReplicationsWhere(match);
      return {};
    },
    // The participant's replications out of the source stage: the active
    // ones, then those stopped (replicationState STOPPED), 50 a page unless
    // maxResults (1-50) says otherwise. An unknown source stage is 400 (the
    // model lists no 404 for this operation).
    ListParticipantReplicas(input) {
      if (!this.stagesByArn.has(input.sourceStageArn)) throw validation(`stage ${input.sourceStageArn} not found`);
      const mine = (r) => r.sourceStageArn === input.sourceStageArn && r.participantId === input.participantId;
      const all = [...this.activeReplications.filter(mine), ...this.stoppedReplications.filter(mine)];
      const { page, next } = this.#page(all, input, `replicas:${input.sourceStageArn}:${input.participantId}`);
      return {
        replicas: page.map((r) => ({ sourceStageArn: r.sourceStageArn, participantId: r.participantId, sourceSessionId: r.sourceSessionId,
          destinationStageArn: r.destinationStageArn, destinationSessionId: r.destinationSessionId, replicationState: r.replicationState })),
        ...(next && { nextToken: next }),
      };
    },

    GetPublicKey({ arn }) {
      const k = this.keysByArn.get(arn);
      if (!k) throw notFound(`public key ${arn} not found`);
      return { publicKey: clone(k) };
    },
    ImportPublicKey({ publicKeyMaterial, name, tags }) {
      if (this.keysByArn.size >= this.maxPublicKeys) throw quota(`public keys per region: ${this.maxPublicKeys} reached`);
      let key;
      try { key = createPublicKey(publicKeyMaterial); } catch { throw validation('publicKeyMaterial is not a PEM public key'); }
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1')
        throw validation('publicKeyMaterial must be an ECDSA P-384 public key');
      const der = key.export({ type: 'spki', format: 'der' });
      const id = randomId(12);
      const k = { arn: `arn:aws:ivs:${this.region}:${this.accountId}:public-key/${id}`, name: name ?? '',
        publicKeyMaterial, fingerprint: createHash('sha256').update(der).digest('hex').match(/../g).join(':'), tags: tags || {} };
      this.keysByArn.set(k.arn, k);
      return { publicKey: clone(k) };
    },
    ListPublicKeys(input) {
      const { page, next } = this.#page([...this.keysByArn.values()], input, 'keys');
      return { publicKeys: page.map((k) => ({ arn: k.arn, name: k.name, tags: clone(k.tags) })), ...(next && { nextToken: next }) };
    },
    DeletePublicKey({ arn }) {
      if (!this.keysByArn.delete(arn)) throw notFound(`public key ${arn} not found`);
      return {};
    },

    ListParticipants(input) {
      const filters = ['filterByUserId', 'filterByPublished', 'filterByState', 'filterByRecordingState'].filter((f) => input[f] !== undefined);
      if (filters.length > 1) throw validation(`only one of filterByUserId, filterByPublished, filterByState, filterByRecordingState may be given, not ${filters.join(' and ')}`);
      const stage = this.stagesByArn.get(input.stageArn);
      if (!stage) throw validation(`stage ${input.stageArn} not found`);
      const session = this.#session(stage, input.sessionId);
      let list = session ? [...session.participants.values()] : [];
      if (input.filterByUserId !== undefined) list = list.filter((p) => p.userId === input.filterByUserId);
      if (input.filterByPublished !== undefined) list = list.filter((p) => p.published === input.filterByPublished);
      if (input.filterByState !== undefined) list = list.filter((p) => p.state === input.filterByState);
      if (input.filterByRecordingState !== undefined) list = list.filter((p) => p.recordingState === input.filterByRecordingState);
      const { page, next } = this.#page(list, input, `participants:${input.stageArn}:${input.sessionId}`);
      return { participants: page.map((p) => this.#participantSummary(p)), ...(next && { nextToken: next }) };
    },
    GetParticipant({ stageArn, sessionId, participantId }) {
      const session = this.#session(this.#stageOr404(stageArn), sessionId);
      if (!session) throw notFound(`session ${sessionId} of stage ${stageArn} not found`);
      const p = session.participants.get(participantId);
      if (!p) throw notFound(`participant ${participantId} not found in session ${sessionId}`);
      const v = this.#participantSummary(p);
      if (p.attributes) v.attributes = clone(p.attributes);
      return { participant: v };
    },
    DisconnectParticipant({ stageArn, participantId }) {
      this.#disconnect(this.#stageOr404(stageArn), participantId);
      return {};
    },
    ListStageSessions(input) {
      const stage = this.stagesByArn.get(input.stageArn);
      if (!stage) throw validation(`stage ${input.stageArn} not found`);
      const newestFirst = [...stage.sessions].reverse();
      const { page, next } = this.#page(newestFirst, input, `sessions:${input.stageArn}`);
      return {
        stageSessions: page.map((s) => ({ sessionId: s.sessionId, startTime: s.startTime, ...(s.endTime && { endTime: s.endTime }) })),
        ...(next && { nextToken: next }),
      };
    },
    GetStageSession({ stageArn, sessionId }) {
      const s = this.#session(this.#stageOr404(stageArn), sessionId);
      if (!s) throw notFound(`session ${sessionId} of stage ${stageArn} not found`);
      return { stageSession: { sessionId: s.sessionId, startTime: s.startTime, ...(s.endTime && { endTime: s.endTime }) } };
    },
  };
}

// Starts a fake IVS on 127.0.0.1. opts as FakeIvs's constructor plus `port`
// (0: any free port). Returns the FakeIvs, listening: .url, .port, .close().
export async function start(opts = {}) {
  return new FakeIvs(opts).listen(opts.port ?? 0);
}
