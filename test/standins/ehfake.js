#!/usr/bin/env node
// ehfake: a small Event Hubs stand-in for the azeventhubs (v2) PRODUCER, speaking AMQP 1.0 via rhea.
//
// What the Go SDK needs of its peer, and what this serves:
//   - SASL ANONYMOUS (UseDevelopmentEmulator=true means plain amqp:// and no TLS);
//   - $cbs put-token: always answered with status 202 (tokens are never checked);
//   - $management READ of com.microsoft:eventhub and com.microsoft:partition (v2 insists on an int
//     georeplication_factor);
//   - sender links on "<hub>" and "<hub>/Partitions/<n>", offered a 1 MiB max-message-size;
//     unknown hubs or partitions are refused with amqp:not-found;
//   - batch messages (format 0x80013700: every data section is one encoded AMQP message) and plain ones.
//
// What it does not do: consumers (receive links, offsets, checkpoints), TLS, tokens, quotas, and Azure's
// own partition-key hash (this one is FNV-1a: a key always lands on the same partition, but not on the
// one Azure would pick).
//
// HTTP introspection (second port):
//   GET    /healthz                       -> {"ok":true,...}
//   GET    /events[?hub=<h>]              -> [{hub, partition, partitionKey, body, contentType, properties, ...}]
//   DELETE /events[?hub=<h>]              -> clears what was recorded
//   POST   /fail?count=N[&condition=C][&description=D][&hub=H][&partitionKey=K]
//                                          -> adds a rule: the next N matching sends are rejected with condition C
//                                             (com.microsoft:server-busy by default, or amqp:internal-error, ...).
//                                             hub and partitionKey narrow which sends match, so a test that
//                                             injects faults does not fail another package's sends running
//                                             at the same time.
//   GET    /fail                          -> {"rules":[...], "injected":M}
//   DELETE /fail                          -> drops every rule
//
// usage: node ehfake.js [--port 5672] [--http-port 5673] [--hubs clickstream,feedback] [--partitions 4]
'use strict';

const http = require('http');
const rhea = require('rhea');

const HOST = '127.0.0.1';
const MAX_MESSAGE_SIZE = 1024 * 1024;
const BATCH_FORMAT = 0x80013700;
const PARTITION_KEY = 'x-opt-partition-key';
const MAX_RECORDED = 100000; // oldest events are dropped past this, so a long run cannot grow without bound
const types = rhea.types;

function parseArgs(argv) {
  const opts = { port: 5672, httpPort: 5673, hubs: ['clickstream', 'feedback'], partitions: 4 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--port': opts.port = Number(value()); break;
      case '--http-port': opts.httpPort = Number(value()); break;
      case '--hubs': opts.hubs = value().split(',').map((h) => h.trim()).filter(Boolean); break;
      case '--partitions': opts.partitions = Number(value()); break;
      case '-h': case '--help':
        console.log('usage: node ehfake.js [--port 5672] [--http-port 5673] [--hubs a,b] [--partitions 4]');
        process.exit(0);
        break;
      default:
        console.error(`ehfake: unknown argument ${argv[i]}`);
        process.exit(2);
    }
  }
  const validPort = (p) => Number.isInteger(p) && p > 0 && p < 65536;
  if (!validPort(opts.port) || !validPort(opts.httpPort) || !(opts.partitions >= 1) || opts.hubs.length === 0) {
    console.error('ehfake: invalid arguments', JSON.stringify(opts));
    process.exit(2);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const createdAt = new Date();
const partitionIds = Array.from({ length: opts.partitions }, (_, i) => String(i));

// state per hub: partitions[i] = {seq, lastEnqueued} (the offset is the sequence number here); events
// recorded in arrival order.
const hubs = new Map(opts.hubs.map((name) => [name, {
  partitions: partitionIds.map(() => ({ seq: -1, lastEnqueued: null })),
  roundRobin: 0,
}]));
let events = [];
const faults = { rules: [], injected: 0 };

// takeFault returns the fault rule this send falls under, using up one of its failures, or null.
function takeFault(entity, outer) {
  const key = outer.message_annotations ? outer.message_annotations[PARTITION_KEY] : undefined;
  const rule = faults.rules.find((r) =>
    (r.hub === null || r.hub === entity.hub) &&
    (r.partitionKey === null || r.partitionKey === (key === undefined ? null : String(key))));
  if (!rule) return null;
  if (--rule.count === 0) faults.rules.splice(faults.rules.indexOf(rule), 1);
  faults.injected++;
  return rule;
}

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

// parseEntity maps a link address to {hub, partition}; partition is null for the hub itself.
function parseEntity(address) {
  const m = /^(?:amqps?:\/\/[^/]+\/)?([^/]+)(?:\/Partitions\/(\d+))?$/i.exec(address || '');
  if (!m || !hubs.has(m[1])) return null;
  if (m[2] === undefined) return { hub: m[1], partition: null };
  const p = Number(m[2]);
  return p < opts.partitions ? { hub: m[1], partition: p } : null;
}

function bodyText(body) {
  if (body === undefined || body === null) return '';
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (body.typecode === 0x75) { // data section(s)
    return body.multiple ? Buffer.concat(body.content).toString('utf8') : Buffer.from(body.content).toString('utf8');
  }
  if (body.typecode === 0x76) return JSON.stringify(body.content); // amqp-sequence
  return typeof body === 'string' ? body : JSON.stringify(body); // amqp-value
}

function jsonValue(v) {
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  return v;
}

function plainMap(m) {
  const out = {};
  for (const [k, v] of Object.entries(m || {})) out[k] = jsonValue(v);
  return out;
}

// record stores each event of one accepted transfer, on the partition the link or the partition key picks.
function record(entity, outer, inner) {
  const hub = hubs.get(entity.hub);
  const outerKey = outer.message_annotations ? outer.message_annotations[PARTITION_KEY] : undefined;
  let partition = entity.partition;
  if (partition === null) {
    partition = outerKey !== undefined ? fnv1a(String(outerKey)) % opts.partitions : hub.roundRobin++ % opts.partitions;
  }
  const p = hub.partitions[partition];
  const now = new Date();
  for (const msg of inner) {
    const annotations = msg.message_annotations || {};
    const key = annotations[PARTITION_KEY] !== undefined ? annotations[PARTITION_KEY] : outerKey;
    p.seq++;
    p.lastEnqueued = now;
    events.push({
      hub: entity.hub,
      partition: String(partition),
      partitionKey: key === undefined ? null : String(key),
      body: bodyText(msg.body),
      contentType: msg.content_type === undefined ? null : String(msg.content_type),
      properties: plainMap(msg.application_properties),
      messageId: msg.message_id === undefined ? null : String(jsonValue(msg.message_id)),
      correlationId: msg.correlation_id === undefined ? null : String(jsonValue(msg.correlation_id)),
      annotations: plainMap(annotations),
      sequenceNumber: p.seq,
      enqueuedTime: now.toISOString(),
    });
  }
  if (events.length > MAX_RECORDED) events = events.slice(events.length - MAX_RECORDED);
}

function decodeTransfer(context) {
  if (context.format === undefined) return { outer: context.message, inner: [context.message] };
  const outer = rhea.message.decode(context.message);
  if (context.format !== BATCH_FORMAT) throw new Error(`unsupported message format 0x${context.format.toString(16)}`);
  const data = outer.body && outer.body.typecode === 0x75 ? outer.body : null;
  const sections = !data ? [] : data.multiple ? data.content : [data.content];
  return { outer, inner: sections.map((b) => rhea.message.decode(Buffer.from(b))) };
}

// ---- request/response nodes ($cbs, $management) ----

function managementReply(req) {
  const ap = req.application_properties || {};
  if (ap.operation !== 'READ') return { status: 400, description: `unsupported operation ${ap.operation}` };
  const hub = hubs.get(ap.name);
  if (!hub) return { status: 404, description: `The messaging entity '${ap.name}' could not be found.` };
  if (ap.type === 'com.microsoft:eventhub') {
    return {
      status: 200,
      body: {
        name: ap.name,
        type: 'com.microsoft:eventhub',
        created_at: createdAt,
        partition_count: types.wrap_int(opts.partitions),
        partition_ids: types.wrap_array(partitionIds, 0xb1),
        georeplication_factor: types.wrap_int(1),
      },
    };
  }
  if (ap.type === 'com.microsoft:partition') {
    const idx = partitionIds.indexOf(String(ap.partition));
    if (idx < 0) return { status: 404, description: `partition '${ap.partition}' not found in '${ap.name}'` };
    const p = hub.partitions[idx];
    return {
      status: 200,
      body: {
        name: ap.name,
        type: 'com.microsoft:partition',
        partition: String(ap.partition),
        begin_sequence_number: types.wrap_long(p.seq < 0 ? -1 : 0),
        last_enqueued_sequence_number: types.wrap_long(p.seq),
        last_enqueued_offset: String(p.seq),
        last_enqueued_time_utc: types.wrap_timestamp((p.lastEnqueued || new Date(0)).getTime()),
        is_partition_empty: p.seq < 0,
      },
    };
  }
  return { status: 400, description: `unsupported type ${ap.type}` };
}

function rpcReply(node, req) {
  if (node === '$cbs') return { status: 202, description: 'Accepted' };
  return managementReply(req);
}

// replySenders: per connection, reply-to address -> sender link (with a queue for sends before credit).
const replySenders = new WeakMap();

function sendReply(connection, to, msg) {
  const entry = (replySenders.get(connection) || new Map()).get(to);
  if (!entry) {
    console.error(`ehfake: no reply link for ${to}`);
    return;
  }
  if (entry.sender.sendable()) entry.sender.send(msg);
  else entry.queue.push(msg);
}

// ---- AMQP server ----

const container = rhea.create_container({ id: 'ehfake' });

function echoAttach(link) {
  // Echo the peer's terminus and settle modes: go-amqp treats a null terminus as a refused link and
  // checks that the settle modes it asked for are the ones it got.
  const remote = link.remote.attach;
  link.local.attach.snd_settle_mode = remote.snd_settle_mode;
  link.local.attach.rcv_settle_mode = remote.rcv_settle_mode;
  if (remote.source) link.set_source(remote.source);
  if (remote.target) link.set_target(remote.target);
}

function refuse(link, condition, description) {
  link.close({ condition, description });
}

container.on('sender_open', (context) => {
  // The SDK's RPC response link: source is the node, target is its private reply-to address.
  const sender = context.sender;
  const source = sender.source && sender.source.address;
  const target = sender.target && sender.target.address;
  if (source !== '$cbs' && source !== '$management') {
    refuse(sender, 'amqp:not-found', `ehfake serves no receivers (consumers): ${source}`);
    return;
  }
  echoAttach(sender);
  if (!replySenders.has(context.connection)) replySenders.set(context.connection, new Map());
  replySenders.get(context.connection).set(target, { sender, queue: [] });
});

container.on('sendable', (context) => {
  const map = replySenders.get(context.connection);
  if (!map) return;
  for (const entry of map.values()) {
    if (entry.sender !== context.sender) continue;
    while (entry.queue.length && entry.sender.sendable()) entry.sender.send(entry.queue.shift());
  }
});

container.on('sender_close', (context) => {
  const map = replySenders.get(context.connection);
  if (!map) return;
  for (const [to, entry] of map) if (entry.sender === context.sender) map.delete(to);
});

container.on('receiver_open', (context) => {
  const receiver = context.receiver;
  const address = receiver.target && receiver.target.address;
  if (address === '$cbs' || address === '$management') {
    echoAttach(receiver);
    return;
  }
  const entity = parseEntity(address);
  if (!entity) {
    console.error(`ehfake: refused link to unknown entity ${address}`);
    refuse(receiver, 'amqp:not-found', `The messaging entity '${address}' could not be found.`);
    return;
  }
  echoAttach(receiver);
  receiver.local.attach.max_message_size = MAX_MESSAGE_SIZE;
});

// flushDisposition writes the outcome just given to context.delivery at once. rhea 3.0.5 batches the
// dispositions of one tick and merges consecutive deliveries into one frame without comparing the
// first two outcomes (session.js write_dispositions), so two sends in flight on one link (the SDK
// sends partition-key batches concurrently) could both get the first one's outcome: an accepted batch
// reported as rejected, or worse, a rejected one as accepted.
function flushDisposition(context) {
  const session = context.session;
  if (session && session.incoming && typeof session.incoming.process === 'function') session.incoming.process(session);
}

container.on('message', (context) => {
  const receiver = context.receiver;
  const address = receiver.target && receiver.target.address;
  const delivery = context.delivery;
  if (address === '$cbs' || address === '$management') {
    delivery.accept();
    flushDisposition(context);
    const req = context.message;
    const reply = rpcReply(address, req);
    sendReply(context.connection, req.reply_to, {
      correlation_id: req.message_id,
      application_properties: {
        'status-code': types.wrap_int(reply.status),
        'status-description': reply.description || (reply.status < 300 ? 'OK' : 'error'),
      },
      body: reply.body === undefined ? null : reply.body,
    });
    return;
  }
  const entity = parseEntity(address);
  if (!entity) {
    delivery.reject({ condition: 'amqp:not-found', description: `unknown entity ${address}` });
    flushDisposition(context);
    return;
  }
  let decoded;
  try {
    decoded = decodeTransfer(context);
  } catch (err) {
    console.error(`ehfake: cannot decode a send to ${address}: ${err.stack || err}`);
    delivery.reject({ condition: 'amqp:decode-error', description: String(err.message || err) });
    flushDisposition(context);
    return;
  }
  const fault = takeFault(entity, decoded.outer);
  if (fault) {
    console.error(`ehfake: injected ${fault.condition} on a send to ${address} (${fault.count} left in its rule)`);
    delivery.reject({ condition: fault.condition, description: fault.description });
    flushDisposition(context);
    return;
  }
  record(entity, decoded.outer, decoded.inner);
  delivery.accept();
  flushDisposition(context);
});

container.on('error', (err) => console.error('ehfake: amqp error:', err && (err.stack || err)));
container.on('disconnected', () => {}); // a client going away is normal; without a listener rhea logs noise

const amqpServer = container.listen({ host: HOST, port: opts.port, autoaccept: false });
amqpServer.on('error', (err) => {
  console.error(`ehfake: AMQP listener on ${HOST}:${opts.port}: ${err.message}`);
  process.exit(1);
});

// ---- HTTP introspection ----

function reply(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, `http://${HOST}`);
  const hub = url.searchParams.get('hub');
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /healthz':
      return reply(res, 200, { ok: true, hubs: [...hubs.keys()], partitions: opts.partitions, events: events.length });
    case 'GET /events':
      return reply(res, 200, hub ? events.filter((e) => e.hub === hub) : events);
    case 'DELETE /events':
      events = hub ? events.filter((e) => e.hub !== hub) : [];
      return reply(res, 200, { ok: true, remaining: events.length });
    case 'GET /fail':
      return reply(res, 200, faults);
    case 'DELETE /fail':
      faults.rules = [];
      return reply(res, 200, faults);
    case 'POST /fail': {
      const count = Number(url.searchParams.get('count') || '1');
      if (!Number.isInteger(count) || count < 1) return reply(res, 400, { error: 'count must be a positive integer' });
      const rule = {
        count,
        condition: url.searchParams.get('condition') || 'com.microsoft:server-busy',
        description: url.searchParams.get('description') || 'injected by ehfake',
        hub,
        partitionKey: url.searchParams.get('partitionKey'),
      };
      faults.rules.push(rule);
      return reply(res, 200, rule);
    }
    default:
      return reply(res, 404, { error: `no route ${route}` });
  }
});
httpServer.on('error', (err) => {
  console.error(`ehfake: HTTP listener on ${HOST}:${opts.httpPort}: ${err.message}`);
  process.exit(1);
});

amqpServer.on('listening', () => {
  httpServer.listen(opts.httpPort, HOST, () => {
    console.log(`ehfake: AMQP on ${HOST}:${opts.port}, HTTP on ${HOST}:${opts.httpPort}, ` +
      `hubs ${[...hubs.keys()].join(',')} with ${opts.partitions} partitions`);
  });
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
