// Runs the app's Auth, Storage and PostgREST flows through the official supabase-js
// client against a running local stack, and prints what it saw as one JSON object.
// tests/local/test_js_client.py supplies RENDIO_JS_INPUT (JSON: url, anonKey and
// serviceKey (publishable / secret, or the legacy JWTs), legacyAnonKey, unknownKey,
// bucket, apple id_tokens) and asserts on the output. Exits 1 if a step that must
// succeed fails; expected failures are recorded as {status, code, statusCode, message}.
import { createClient } from '@supabase/supabase-js';

const input = JSON.parse(process.env.RENDIO_JS_INPUT ?? 'null');
if (!input) {
  console.error('RENDIO_JS_INPUT (a JSON object) is required');
  process.exit(2);
}
const { url, anonKey, serviceKey, legacyAnonKey, unknownKey, bucket, apple } = input;

// Realtime is unused; a stub transport spares Node 20 (no global WebSocket) the `ws` package.
class NoRealtime { constructor() { throw new Error('realtime is not used here'); } }
const client = (key = anonKey) => createClient(url, key, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: NoRealtime },
});
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));
const email = () => `js-${crypto.randomUUID().slice(0, 12)}@example.com`;
const err = (e) => e && {
  name: e.name, status: e.status ?? null, code: e.code ?? null,
  statusCode: e.statusCode ?? null, message: e.message, reasons: e.reasons ?? null,
};
// The data of a call that must succeed; otherwise stop with what went wrong.
const must = ({ data, error }, step) => {
  if (error) throw new Error(`${step} failed: ${JSON.stringify(err(error))}`);
  return data;
};
const bytes = async (blob) => Buffer.from(await blob.arrayBuffer());
const idToken = (name) => ({ provider: 'apple', token: apple[name].token, nonce: apple[name].nonce });

async function newUser() {
  const c = client();
  const { user } = must(await c.auth.signUp({ email: email(), password: 'a fine password' }), 'signUp');
  return { id: user.id, client: c };
}

async function anonymous() {
  const c = client();
  const first = must(await c.auth.signInAnonymously(), 'signInAnonymously');
  const seen = must(await c.auth.getUser(), 'getUser');
  const refreshed = must(await c.auth.refreshSession(), 'refreshSession');
  const signOut = await c.auth.signOut();
  const reuse = await c.auth.refreshSession({ refresh_token: refreshed.session.refresh_token });
  const gone = await c.auth.getUser(refreshed.session.access_token);
  return {
    user: { id: first.user.id, is_anonymous: first.user.is_anonymous, role: first.user.role,
      identities: first.user.identities },
    session: { token_type: first.session.token_type, expires_in: first.session.expires_in,
      has_expires_at: typeof first.session.expires_at === 'number' },
    claims: claimsOf(first.session.access_token),
    getUser: { id: seen.user.id, is_anonymous: seen.user.is_anonymous },
    refreshed: {
      user_id: refreshed.user.id,
      new_refresh_token: refreshed.session.refresh_token !== first.session.refresh_token,
      same_session: claimsOf(refreshed.session.access_token).session_id
        === claimsOf(first.session.access_token).session_id,
    },
    signOutError: err(signOut.error),
    refreshAfterSignOut: err(reuse.error),
    getUserAfterSignOut: err(gone.error),
  };
}

async function password() {
  const address = email();
  const secret = 'correct horse battery';
  const up = must(await client().auth.signUp(
    { email: address, password: secret, options: { data: { name: 'Ada' } } }), 'signUp');
  const signedIn = must(await client().auth.signInWithPassword(
    { email: address.toUpperCase(), password: secret }), 'signInWithPassword');
  const wrong = await client().auth.signInWithPassword({ email: address, password: 'not it!' });
  const again = await client().auth.signUp({ email: address, password: secret });
  const weak = await client().auth.signUp({ email: email(), password: 'abc' });
  return {
    email: address,
    user: { id: up.user.id, email: up.user.email, confirmed: Boolean(up.user.email_confirmed_at),
      app_metadata: up.user.app_metadata, name: up.user.user_metadata.name,
      providers: (up.user.identities ?? []).map((i) => i.provider) },
    hasSession: Boolean(up.session?.access_token),
    signIn: { id: signedIn.user.id, amr: claimsOf(signedIn.session.access_token).amr },
    wrongPassword: err(wrong.error), duplicate: err(again.error), weak: err(weak.error),
  };
}

async function appleSignIn() {
  const c = client();
  const first = must(await c.auth.signInWithIdToken(idToken('signIn')), 'signInWithIdToken');
  const again = must(await client().auth.signInWithIdToken(idToken('signInAgain')),
    'signInWithIdToken again');
  const bad = client();
  const wrongNonce = await bad.auth.signInWithIdToken(idToken('wrongNonce'));
  return {
    user: { id: first.user.id, email: first.user.email, is_anonymous: first.user.is_anonymous,
      app_metadata: first.user.app_metadata,
      identities: first.user.identities.map((i) => ({ provider: i.provider, id: i.id })) },
    amr: claimsOf(first.session.access_token).amr,
    againId: again.user.id,
    wrongNonce: err(wrongNonce.error),
    sessionAfterWrongNonce: (await bad.auth.getSession()).data.session,
  };
}

async function appleLink() {
  const c = client();
  const anon = must(await c.auth.signInAnonymously(), 'signInAnonymously');
  const before = must(await c.rpc('get_my_credits'), 'rpc get_my_credits');
  const linked = must(await c.auth.linkIdentity(idToken('link')), 'linkIdentity');
  const seen = must(await c.auth.getUser(), 'getUser after link');
  const row = must(await c.from('users').select('id, is_guest, apple_sub').single(), 'users row');
  const later = must(await client().auth.signInWithIdToken(idToken('linkLater')),
    'signInWithIdToken after link');
  const thief = client();
  must(await thief.auth.signInAnonymously(), 'thief signInAnonymously');
  const stolen = await thief.auth.linkIdentity(idToken('thief'));
  return {
    anonymousId: anon.user.id,
    before,
    linked: { id: linked.user.id, is_anonymous: linked.user.is_anonymous,
      providers: linked.user.app_metadata.providers,
      claims_is_anonymous: claimsOf(linked.session.access_token).is_anonymous },
    getUser: { id: seen.user.id, is_anonymous: seen.user.is_anonymous },
    row,
    laterId: later.user.id,
    thief: err(stolen.error),
  };
}

async function admin(outsider) {
  const service = client(serviceKey);
  const address = email();
  const { user } = must(await service.auth.admin.createUser({ email: address,
    password: 'admin made it', email_confirm: true, user_metadata: { name: 'Grace' },
    app_metadata: { tier: 'gold' } }), 'admin.createUser');
  const listed = must(await service.auth.admin.listUsers({ page: 1, perPage: 1000 }), 'listUsers');
  // No arguments sends `?page=&per_page=`; one per page exercises the Link header.
  const defaults = must(await service.auth.admin.listUsers(), 'listUsers()');
  const paged = must(await service.auth.admin.listUsers({ page: 1, perPage: 1 }), 'listUsers paged');
  const signedIn = must(await client().auth.signInWithPassword(
    { email: address, password: 'admin made it' }), 'signInWithPassword as created user');
  const refused = await outsider.auth.admin.listUsers();
  must(await service.auth.admin.deleteUser(user.id), 'admin.deleteUser');
  const missing = await service.auth.admin.getUserById(user.id);
  return {
    user: { id: user.id, email: user.email, confirmed: Boolean(user.email_confirmed_at),
      app_metadata: user.app_metadata, name: user.user_metadata.name },
    listed: listed.users.some((u) => u.id === user.id),
    defaults: { count: defaults.users.length, total: defaults.total },
    paged: { count: paged.users.length, total: paged.total, nextPage: paged.nextPage,
      lastPage: paged.lastPage },
    signInId: signedIn.user.id,
    outsider: err(refused.error),
    afterDelete: err(missing.error),
  };
}

async function storage(a, b) {
  const service = client(serviceKey);
  must(await service.storage.createBucket(bucket, { public: false, fileSizeLimit: 1024,
    allowedMimeTypes: ['text/*', 'image/png'] }), 'createBucket');
  const mine = a.client.storage.from(bucket);
  const theirs = b.client.storage.from(bucket);
  const text = `${a.id}/hello.txt`;
  const png = `${a.id}/pixel.png`;
  const pngBytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255]);

  const uploaded = must(await mine.upload(text, Buffer.from('hello rendio'),
    { contentType: 'text/plain', cacheControl: '60' }), 'upload Buffer');
  // A Blob goes as multipart/form-data, a Buffer as the raw body: both wire forms.
  const blob = must(await mine.upload(png, new Blob([pngBytes], { type: 'image/png' })),
    'upload Blob');
  const listed = must(await mine.list(a.id), 'list');
  const downloaded = must(await mine.download(text), 'download');
  const pngBlob = must(await mine.download(png), 'download png');
  const { signedUrl } = must(await mine.createSignedUrl(text, 60), 'createSignedUrl');
  const fetched = await fetch(signedUrl); // no apikey, no Authorization

  const result = {
    uploaded, blob,
    listed: listed.map((o) => ({ name: o.name, size: o.metadata?.size,
      mimetype: o.metadata?.mimetype, cacheControl: o.metadata?.cacheControl })),
    downloaded: { text: (await bytes(downloaded)).toString(), type: downloaded.type },
    png: { same: (await bytes(pngBlob)).equals(pngBytes), type: pngBlob.type },
    signed: { status: fetched.status, type: fetched.headers.get('content-type'),
      text: await fetched.text() },
  };
  const read = await theirs.download(text);
  result.other = {
    read: err(read.error),
    list: must(await theirs.list(a.id), 'B list'),
    listRoot: must(await theirs.list(), 'B list root'),
    upsert: err((await theirs.upload(text, Buffer.from('pwned'),
      { contentType: 'text/plain', upsert: true })).error),
    remove: await theirs.remove([text]),
    stillThere: (await bytes(must(await mine.download(text), 'download again'))).toString(),
  };
  const big = Buffer.alloc(2048, 'x');
  result.limits = {
    tooBig: err((await mine.upload(`${a.id}/big.txt`, big, { contentType: 'text/plain' })).error),
    tooBigBlob: err((await mine.upload(`${a.id}/big2.txt`,
      new Blob([big], { type: 'text/plain' }))).error),
    badType: err((await mine.upload(`${a.id}/doc.pdf`, Buffer.from('%PDF'),
      { contentType: 'application/pdf' })).error),
  };
  const removed = must(await service.storage.from(bucket).remove([text, png]), 'service remove');
  result.service = {
    removed: removed.map((o) => o.name).sort(),
    afterRemove: err((await mine.download(text)).error),
    empty: must(await service.storage.emptyBucket(bucket), 'emptyBucket'),
    deleted: must(await service.storage.deleteBucket(bucket), 'deleteBucket'),
  };
  return result;
}

async function postgrest(a) {
  const rows = await a.client.from('users').select('id, is_guest, credits_remaining');
  const credits = await a.client.rpc('get_my_credits');
  const anonymous = await client().from('users').select('id');
  return {
    rows: { status: rows.status, data: rows.data, error: rows.error },
    credits: { status: credits.status, data: credits.data, error: credits.error },
    anonymous: { status: anonymous.status, data: anonymous.data, error: anonymous.error },
  };
}

// A client built from the legacy anon JWT still works; one from a key the stack does not
// have gets the gateway's 401.
async function keys() {
  const legacy = client(legacyAnonKey);
  const { user } = must(await legacy.auth.signInAnonymously(), 'legacy signInAnonymously');
  const rows = await legacy.from('users').select('id, is_guest');
  const unknown = await client(unknownKey).from('users').select('id');
  return {
    legacyUser: user.id,
    legacyRow: { status: rows.status, data: rows.data },
    unknown: { status: unknown.status, message: unknown.error?.message ?? null },
  };
}

async function main() {
  const results = {
    anonymous: await anonymous(),
    password: await password(),
    appleSignIn: await appleSignIn(),
    appleLink: await appleLink(),
  };
  const [a, b] = [await newUser(), await newUser()];
  results.users = { a: a.id, b: b.id };
  results.admin = await admin(a.client);
  results.storage = await storage(a, b);
  results.postgrest = await postgrest(a);
  results.keys = await keys();
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  console.error(error?.stack ?? String(error));
  process.exit(1);
});
