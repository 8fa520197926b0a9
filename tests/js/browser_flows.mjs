// Runs supabase-js against the local stack as a web page at `origin` would: every request
// goes through `browserFetch`, which does what a browser's fetch does cross-origin (the
// Fetch standard's CORS protocol): a preflight for any request that is not "simple"
// (supabase-js always sends `apikey`), checked before the request is sent; an `Origin`
// header; the answer refused unless it allows the origin; and only the CORS-safelisted
// and exposed response headers left for the page to read.
// tests/local/test_wire.py supplies RENDIO_JS_INPUT (JSON: url, key, serviceKey, origin,
// bucket, userId, userToken) and asserts on the JSON printed. Exits 1 when a step that
// must succeed fails.
import { createClient } from '@supabase/supabase-js';

const input = JSON.parse(process.env.RENDIO_JS_INPUT ?? 'null');
if (!input) {
  console.error('RENDIO_JS_INPUT (a JSON object) is required');
  process.exit(2);
}
const { url, key, serviceKey, origin, bucket } = input;

const SIMPLE_METHODS = new Set(['GET', 'HEAD', 'POST']);
const SIMPLE_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data',
  'text/plain']);
const SAFELISTED_RESPONSE = new Set(['cache-control', 'content-language', 'content-length',
  'content-type', 'expires', 'last-modified', 'pragma']);
const seen = { preflights: 0, requests: 0, blocked: [] };

const list = (value) => (value ?? '').split(',').map((s) => s.trim().toLowerCase())
  .filter(Boolean);

function unsafeHeaders(headers) {
  const names = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (['accept', 'accept-language', 'content-language'].includes(lower)) continue;
    if (lower === 'content-type' && SIMPLE_TYPES.has(value.split(';')[0].trim().toLowerCase())) {
      continue;
    }
    names.push(lower);
  }
  return names.sort();
}

function blocked(reason, target) {
  seen.blocked.push(`${reason}: ${target}`);
  return new TypeError('Failed to fetch'); // all a page learns of a CORS failure
}

function allowsOrigin(response) {
  const allowed = response.headers.get('access-control-allow-origin');
  return allowed === '*' || allowed === origin;
}

async function browserFetch(resource, init = {}) {
  const request = new Request(resource, init);
  const method = request.method.toUpperCase();
  const headers = new Headers(request.headers);
  const body = ['GET', 'HEAD'].includes(method) ? undefined : await request.arrayBuffer();
  const unsafe = unsafeHeaders(headers);
  if (!SIMPLE_METHODS.has(method) || unsafe.length) {
    seen.preflights += 1;
    const preflight = await fetch(request.url, { method: 'OPTIONS', headers: {
      Origin: origin, 'Access-Control-Request-Method': method,
      ...(unsafe.length ? { 'Access-Control-Request-Headers': unsafe.join(',') } : {}) } });
    if (!preflight.ok || !allowsOrigin(preflight)) throw blocked('preflight refused', request.url);
    const methods = list(preflight.headers.get('access-control-allow-methods'));
    if (!SIMPLE_METHODS.has(method) && !methods.includes(method.toLowerCase())
        && !methods.includes('*')) throw blocked(`method ${method} not allowed`, request.url);
    const granted = list(preflight.headers.get('access-control-allow-headers'));
    // `*` never covers Authorization (Fetch standard).
    const missing = unsafe.filter((h) => !granted.includes(h)
      && !(granted.includes('*') && h !== 'authorization'));
    if (missing.length) throw blocked(`headers ${missing} not allowed`, request.url);
  }
  headers.set('Origin', origin);
  seen.requests += 1;
  const response = await fetch(request.url, { method, headers, body, signal: request.signal });
  if (!allowsOrigin(response)) throw blocked('answer without CORS', request.url);
  const exposed = list(response.headers.get('access-control-expose-headers'));
  const visible = new Headers();
  for (const [name, value] of response.headers) {
    if (SAFELISTED_RESPONSE.has(name) || exposed.includes(name) || exposed.includes('*')) {
      visible.append(name, value);
    }
  }
  const noBody = [101, 204, 205, 304].includes(response.status) || method === 'HEAD';
  return new Response(noBody ? null : await response.arrayBuffer(),
    { status: response.status, statusText: response.statusText, headers: visible });
}

// Realtime is unused; a stub transport spares Node 20 (no global WebSocket) the `ws` package.
class NoRealtime { constructor() { throw new Error('realtime is not used here'); } }
const client = (apiKey = key) => createClient(url, apiKey, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  global: { fetch: browserFetch },
  realtime: { transport: NoRealtime },
});
const err = (e) => e && { name: e.name, status: e.status ?? null, code: e.code ?? null,
  statusCode: e.statusCode ?? null, message: e.message };
const must = ({ data, error }, step) => {
  if (error) throw new Error(`${step} failed: ${JSON.stringify(err(error))}`);
  return data;
};
const email = () => `browser-${crypto.randomUUID().slice(0, 12)}@example.com`;

async function auth() {
  const guest = client();
  const signedIn = must(await guest.auth.signInAnonymously(), 'signInAnonymously');
  const user = must(await guest.auth.getUser(), 'getUser');
  const refreshed = must(await guest.auth.refreshSession(), 'refreshSession');
  // The error code reaches the page only because Auth exposes X-Supabase-Api-Version.
  const wrong = await client().auth.signInWithPassword({ email: email(), password: 'not it' });
  const address = email();
  const signedUp = must(await client().auth.signUp({ email: address, password: 'a browser pw' }),
    'signUp');
  const paged = must(await client(serviceKey).auth.admin.listUsers({ page: 1, perPage: 1 }),
    'listUsers');
  const signOut = await guest.auth.signOut();
  return {
    anonymous: { id: signedIn.user.id, same: user.user.id === signedIn.user.id,
      refreshed: refreshed.session.refresh_token !== signedIn.session.refresh_token },
    wrongPassword: err(wrong.error),
    signUp: { email: signedUp.user.email, hasSession: Boolean(signedUp.session) },
    // Read from X-Total-Count and Link: exposed by Auth too.
    paged: { total: paged.total, nextPage: paged.nextPage, lastPage: paged.lastPage },
    signOutError: err(signOut.error),
  };
}

async function rest() {
  const guest = client();
  const { user } = must(await guest.auth.signInAnonymously(), 'signInAnonymously for rest');
  const rows = await guest.from('users').select('id, is_guest');
  return { status: rows.status, ids: (rows.data ?? []).map((r) => r.id), mine: user.id,
    error: err(rows.error) };
}

async function storage() {
  // The user's session as a page holds it: its access token on every request.
  const mine = createClient(url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: { fetch: browserFetch, headers: { Authorization: `Bearer ${input.userToken}` } },
    realtime: { transport: NoRealtime },
  }).storage.from(bucket);
  const uid = input.userId;
  must(await mine.upload(`${uid}/hello.txt`, new Blob(['hello browser'], { type: 'text/plain' })),
    'upload');
  must(await mine.upload(`${uid}/page.html`, new Blob(['<script>1</script>'],
    { type: 'text/html' })), 'upload html');
  const text = must(await mine.download(`${uid}/hello.txt`), 'download');
  const page = must(await mine.download(`${uid}/page.html`), 'download html');
  const listed = must(await mine.list(uid), 'list');
  const listedV2 = must(await mine.listV2({ prefix: `${uid}/`, with_delimiter: true }),
    'listV2');
  const { signedUrl } = must(await mine.createSignedUrl(`${uid}/hello.txt`, 60),
    'createSignedUrl');
  const signed = await browserFetch(signedUrl);
  const outsider = await client().storage.from(bucket).download(`${uid}/hello.txt`);
  return {
    text: await text.text(),
    page: { type: page.type, text: await page.text() },
    listed: listed.map((o) => o.name),
    listedV2: listedV2.objects.map((o) => o.name),
    signed: { status: signed.status, type: signed.headers.get('content-type'),
      text: await signed.text() },
    outsider: err(outsider.error),
  };
}

async function main() {
  const results = { auth: await auth(), rest: await rest(), storage: await storage() };
  console.log(JSON.stringify({ ...results, seen }));
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  console.error(JSON.stringify(seen));
  process.exit(1);
});
