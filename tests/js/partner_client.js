// A partner's client of the KDS hub, written from docs/protocol.md alone (issue 16: "a client written from the docs
// alone, validating every frame with ajv against the published schema, passes every flow").
//
//   node partner_client.js --url ws://127.0.0.1:PORT --schema SCHEMA.json --device app-backend --token TOKEN
//                          [--kiosk-device kiosk-1 --kiosk-token TOKEN] [--timeout-ms 8000]
//
// It is what a store's app backend (and, given a kiosk device, a kiosk) does: hello/welcome, submit, resubmit,
// amend, follow the order's statuses, cancel, reconnect with resume_from. Every frame it sends and every frame it
// receives is validated with ajv (strict, draft 2020-12 build, ajv-formats, nothing added) against SCHEMA.json, the
// schema exactly as `kds schema` prints it: sent frames against $defs/ClientMessage, received ones against
// $defs/HubMessage. A frame sent on purpose to be refused must be refused by the schema too.
//
// Where a kitchen or the counter must act, it prints "waiting: STATUS ORDER_ID" on stdout and waits for the
// order.status frame that says so (whoever drives the kitchen acts then). Before reconnecting it closes its
// connection and prints "waiting: offline ORDER_ID RESUME_FROM", then waits for a line "go" on stdin.
//
// The last line on stdout is one JSON summary: {ok, flows, frames_validated, validated: {sent, received},
// refused_by_schema_as_expected, schema_failures, failure, protocol, elapsed_ms}. Exit 0 only when every flow passed;
// 1 on a schema failure, an unexpected frame, an answer the docs do not describe, or a timeout.
"use strict";

const fs = require("fs");
const readline = require("readline");
const WebSocket = require("ws");
const Ajv2020 = require("ajv/dist/2020");
const addFormats = require("ajv-formats");

const started = Date.now();

// ------------------------------------------------------------------------------------------------ arguments

function parseArgs(argv) {
  const out = { timeoutMs: 8000 };
  const names = {
    "--url": "url",
    "--schema": "schema",
    "--device": "device",
    "--token": "token",
    "--kiosk-device": "kioskDevice",
    "--kiosk-token": "kioskToken",
    "--timeout-ms": "timeoutMs",
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = names[argv[i]];
    if (!name || i + 1 >= argv.length) usage(`unknown or incomplete argument ${argv[i]}`);
    out[name] = name === "timeoutMs" ? Number(argv[i + 1]) : argv[i + 1];
  }
  for (const need of ["url", "schema", "device", "token"]) if (!out[need]) usage(`--${need} is required`);
  if (Boolean(out.kioskDevice) !== Boolean(out.kioskToken)) usage("--kiosk-device and --kiosk-token go together");
  return out;
}

function usage(why) {
  process.stderr.write(
    `${why}\nusage: node partner_client.js --url WS_URL --schema SCHEMA.json --device ID --token TOKEN ` +
      `[--kiosk-device ID --kiosk-token TOKEN] [--timeout-ms N]\n`,
  );
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));

// ------------------------------------------------------------------------------------------------ summary

const summary = {
  ok: false,
  flows: {},
  frames_validated: 0,
  validated: { sent: {}, received: {} },
  refused_by_schema_as_expected: 0,
  schema_failures: [],
  failure: null,
  protocol: null,
  elapsed_ms: 0,
};

class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

const show = (x) => JSON.stringify(x);
/** JSON with object keys sorted: equal values, whatever order the keys came in. */
const canonical = (x) =>
  Array.isArray(x)
    ? `[${x.map(canonical).join(",")}]`
    : x !== null && typeof x === "object"
      ? `{${Object.keys(x)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical(x[k])}`)
          .join(",")}}`
      : JSON.stringify(x);
const same = (a, b) => canonical(a) === canonical(b);

// ------------------------------------------------------------------------------------------------ the schema

// As docs/protocol.md ("The schema and the AsyncAPI document") says a partner loads it.
const ajv = addFormats(new Ajv2020({ strict: true, allErrors: true }));
ajv.addSchema(JSON.parse(fs.readFileSync(args.schema, "utf8")), "kds.json");
const isClientFrame = ajv.compile({ $ref: "kds.json#/$defs/ClientMessage" });
const isHubFrame = ajv.compile({ $ref: "kds.json#/$defs/HubMessage" });

const ajvErrors = (validate) => (validate.errors || []).slice(0, 8).map((e) => `${e.instancePath || "/"} ${e.message}`);

function count(direction, frame) {
  const kind = frame && typeof frame.type === "string" ? frame.type : "?";
  summary.validated[direction][kind] = (summary.validated[direction][kind] || 0) + 1;
  summary.frames_validated += 1;
}

/** A frame about to be sent must fit $defs/ClientMessage; a frame meant to be refused (`bad`) must not. */
function validateOut(frame, bad = false) {
  const valid = isClientFrame(frame);
  count("sent", frame);
  if (bad) {
    if (valid) {
      summary.schema_failures.push({ direction: "sent", type: frame.type, ref: frame.ref, errors: ["accepted a bad frame"] });
      fail(`the schema accepts a ${frame.type} the docs say is invalid: ${show(frame)}`);
    }
    summary.refused_by_schema_as_expected += 1;
    return;
  }
  if (!valid) {
    summary.schema_failures.push({ direction: "sent", type: frame.type, ref: frame.ref, errors: ajvErrors(isClientFrame) });
    fail(`sent ${frame.type} does not fit the schema: ${ajvErrors(isClientFrame).join("; ")}`);
  }
}

/** Every frame received must fit $defs/HubMessage. */
function validateIn(frame) {
  const valid = isHubFrame(frame);
  count("received", frame);
  if (!valid) {
    const type = frame && frame.type;
    summary.schema_failures.push({ direction: "received", type, errors: ajvErrors(isHubFrame), frame });
    fail(`received ${type} does not fit the schema: ${ajvErrors(isHubFrame).join("; ")}`);
  }
}

// ------------------------------------------------------------------------------------------------ one connection

/** One websocket connection: frames in, validated on arrival, read one at a time with a bounded wait. */
class Conn {
  constructor(name, url) {
    this.name = name;
    this.frames = [];
    this.problem = null;
    this.closed = null;
    this.wake = null;
    // The hub's own frames may be up to about 2 MiB; set no limit below that (docs: "the largest frame").
    this.ws = new WebSocket(url, { maxPayload: 4 * 1024 * 1024 });
    this.ws.on("message", (data, isBinary) => {
      if (this.problem) return;
      let frame;
      try {
        frame = JSON.parse(isBinary ? Buffer.from(data).toString("utf8") : data.toString("utf8"));
      } catch (e) {
        this.problem = new Failure(`${this.name}: a frame that is not JSON: ${String(data).slice(0, 200)}`);
        return this.poke();
      }
      try {
        validateIn(frame);
        this.frames.push(frame);
      } catch (e) {
        this.problem = e;
      }
      this.poke();
    });
    this.ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.poke();
    });
    this.ws.on("error", (e) => {
      if (!this.problem) this.problem = new Failure(`${this.name}: websocket error: ${e.message}`);
      this.poke();
    });
  }

  poke() {
    if (this.wake) {
      const w = this.wake;
      this.wake = null;
      w();
    }
  }

  open() {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.OPEN) return resolve();
      this.ws.once("open", resolve);
      this.ws.once("error", (e) => reject(new Failure(`${this.name}: cannot connect to ${args.url}: ${e.message}`)));
    });
  }

  send(frame, bad = false) {
    validateOut(frame, bad);
    this.ws.send(JSON.stringify(frame));
  }

  /** The next frame, within the time limit; what was received is validated before it is handed out. */
  async next(what) {
    const end = Date.now() + args.timeoutMs;
    for (;;) {
      if (this.problem) throw this.problem;
      if (this.frames.length) return this.frames.shift();
      if (this.closed) fail(`${this.name}: connection closed (${this.closed.code} ${this.closed.reason}) waiting for ${what}`);
      const left = end - Date.now();
      if (left <= 0) fail(`${this.name}: no frame within ${args.timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The close the hub makes (after refusing a hello), within the time limit. */
  async closedBy(what) {
    const end = Date.now() + args.timeoutMs;
    while (!this.closed) {
      if (this.problem) throw this.problem;
      check(this.frames.length === 0, `${this.name}: unexpected frame before the close: ${show(this.frames[0])}`);
      const left = end - Date.now();
      if (left <= 0) fail(`${this.name}: no close within ${args.timeoutMs} ms after ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    check(this.frames.length === 0, `${this.name}: unexpected frame before the close: ${show(this.frames[0])}`);
    return this.closed;
  }

  close() {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.ws.once("close", () => resolve());
      this.ws.close(1000, "partner client done");
    });
  }
}

// ------------------------------------------------------------------------------------------------ a source device

const UTC = /\+00:00$/; // docs: every time the hub sends is in UTC (+00:00)
const ORDER_ID = /^\d{8}-[AKS]\d{3,}$/; // docs: YYYYMMDD-NUMBER, NUMBER a channel letter and at least three digits

// Docs, "Order status": accepted → preparing → ready → handed_over, cancelled from any status before handed_over;
// protocol 2 sources also hear called between ready and handed_over; a recalled ticket or an amendment takes a ready
// (or called) order back to preparing; order.recall takes handed_over back to ready.
const NEXT = {
  accepted: ["preparing", "ready", "cancelled"],
  preparing: ["ready", "cancelled"],
  ready: ["preparing", "called", "handed_over", "cancelled"],
  called: ["preparing", "handed_over", "cancelled"],
  handed_over: ["ready"],
  cancelled: [],
};

let refCount = 0;
const newRef = (prefix) => `${prefix}-${++refCount}`;

/** A source (app backend, kiosk): its connection, its orders (by order_id) and its resume point. */
class Source {
  constructor(device, token, label) {
    this.device = device;
    this.token = token;
    this.label = label;
    this.orders = new Map();
    this.last = 0; // the resume point: docs, "Resuming after a disconnect"
    this.replayLeft = 0;
    this.target = 0;
    this.conn = null;
    this.welcome = null;
  }

  /** Connect and say hello; returns the welcome (with its snapshot pages and replayed frames applied). */
  async connect(resumeFrom = 0) {
    this.conn = new Conn(this.label, args.url);
    await this.conn.open();
    this.conn.send({
      type: "hello",
      device: this.device,
      token: this.token,
      role: "source",
      resume_from: resumeFrom,
      client: "partner-node-client 1.0",
      protocols: [1, 2],
    });
    const w = await this.conn.next("welcome");
    if (w.type === "error") fail(`hello refused: ${w.code} ${w.message}`);
    check(w.type === "welcome", `expected welcome, got ${w.type}`);
    check(w.protocol === 2, `welcome.protocol is ${w.protocol}, expected 2 (the highest of [1, 2] the hub speaks)`);
    check(w.device === this.device && w.role === "source" && w.station === null, `welcome names ${w.device}/${w.role}`);
    check(UTC.test(w.server_time), `server_time ${w.server_time} is not in UTC`);
    this.welcome = w;
    if (w.resumed) {
      check(w.snapshot === null && w.pages === 0, "a resumed welcome has snapshot null and no pages");
      this.replayLeft = w.replay;
      this.target = w.seq;
      if (w.replay === 0) this.last = w.seq;
      const replayed = [];
      while (this.replayLeft > 0) {
        const f = await this.conn.next(`replayed frame ${replayed.length + 1} of ${w.replay}`);
        check(f.type === "order.status", `a source's replay holds order.status frames only, got ${f.type}`);
        this.apply(f);
        replayed.push(f);
      }
      w.replayed = replayed;
    } else {
      check(w.replay === 0, "a welcome that did not resume replays nothing");
      check(w.snapshot && Array.isArray(w.snapshot.statuses), "a fresh welcome has a snapshot with statuses");
      const statuses = [...w.snapshot.statuses];
      for (let page = 1; page <= w.pages; page++) {
        const p = await this.conn.next(`snapshot.page ${page} of ${w.pages}`);
        check(p.type === "snapshot.page", `expected snapshot.page, got ${p.type}`);
        statuses.push(...(p.statuses || []));
      }
      this.orders = new Map();
      for (const s of statuses) {
        check(s.type === "order.status", "snapshot statuses are order.status frames");
        this.orders.set(s.order_id, { key: s.key, number: s.number, status: s.status, seq: s.seq, history: [s] });
      }
      w.statuses = statuses;
      this.last = w.seq;
    }
    summary.protocol = w.protocol;
    return w;
  }

  /** Apply an order.status of one of this device's orders (known by the order.accepted that came first). */
  apply(s) {
    const o = this.orders.get(s.order_id);
    if (!o) fail(`${this.label}: order.status for an order this device does not know (yet): ${show(s)}`);
    check(s.key === o.key && s.number === o.number, `order.status names key ${s.key}/${s.number}, not ${o.key}/${o.number}`);
    check(UTC.test(s.at), `order.status at ${s.at} is not in UTC`);
    check(s.seq > o.seq, `order.status seq ${s.seq} is not after the order's last (${o.seq}): ${show(s)}`);
    // Docs, "order.status": the same status again, while accepted or preparing, tells an estimate that moved.
    const moved = s.status === o.status && ["accepted", "preparing"].includes(s.status) && "ready_at_estimate" in s;
    check(
      moved || NEXT[o.status].includes(s.status),
      `${this.label}: order.status ${o.status} → ${s.status} for ${s.order_id} is not a change the docs describe: ${show(s)}`,
    );
    check(!("ready_at_estimate" in s) || UTC.test(s.ready_at_estimate), `ready_at_estimate is not in UTC: ${show(s)}`);
    check((s.status === "cancelled") === ("reason" in s), `reason comes with cancelled, and only then: ${show(s)}`);
    o.status = s.status;
    o.seq = s.seq;
    o.history.push(s);
    if (this.replayLeft > 0) {
      this.replayLeft -= 1;
      if (this.replayLeft === 0) this.last = this.target;
    } else this.last = Math.max(this.last, s.seq);
  }

  /** Send a request and read up to its answer (same ref); order.status frames on the way are applied. */
  async request(frame, bad = false) {
    this.conn.send(frame, bad);
    for (;;) {
      const f = await this.conn.next(`the answer to ${frame.type} ${frame.ref}`);
      if (f.type === "order.status") {
        this.apply(f);
        continue;
      }
      check(["order.accepted", "ack", "error", "pong"].includes(f.type), `${this.label}: unexpected ${f.type} frame: ${show(f)}`);
      check(f.ref === frame.ref, `${this.label}: an answer to ref ${show(f.ref)} while waiting for ${frame.ref}: ${show(f)}`);
      return f;
    }
  }

  /** Read order.status frames until `orderId` is `status` (every frame must be one of this device's statuses). */
  async until(orderId, status) {
    const o = this.orders.get(orderId);
    while (o.status !== status) {
      const f = await this.conn.next(`order.status ${status} of ${orderId} (it is ${o.status})`);
      check(f.type === "order.status", `${this.label}: unexpected ${f.type} frame waiting for ${status}: ${show(f)}`);
      this.apply(f);
    }
    return o.history[o.history.length - 1];
  }

  /** Submit; returns the answer; on a fresh acceptance, also waits for the order's first status (accepted). */
  async submit(order, ref = newRef(this.device)) {
    const a = await this.request({ type: "order.submit", ref, order });
    if (a.type === "order.accepted" && !a.duplicate) {
      check(ORDER_ID.test(a.order_id) && a.order_id.endsWith(`-${a.number}`), `order_id ${a.order_id}, number ${a.number}`);
      check(!this.orders.has(a.order_id), `a new order got the id of a known one: ${a.order_id}`);
      this.orders.set(a.order_id, { key: order.key, number: a.number, status: null, seq: 0, history: [] });
      const first = await this.conn.next(`order.status accepted of ${a.order_id}`);
      check(first.type === "order.status", `expected the new order's order.status, got ${first.type}: ${show(first)}`);
      const o = this.orders.get(a.order_id);
      check(first.order_id === a.order_id && first.status === "accepted", `first status: ${show(first)}`);
      check(same(first.ready, []) && !("reason" in first), `a new order's status: ${show(first)}`);
      o.status = "accepted";
      o.seq = first.seq;
      o.history.push(first);
      this.last = Math.max(this.last, first.seq);
    }
    return a;
  }

  /** Print what the driver must do and wait for the status it makes. */
  async waitFor(orderId, status) {
    say(`waiting: ${status} ${orderId}`);
    return this.until(orderId, status);
  }
}

function say(line) {
  process.stdout.write(`${line}\n`);
}

// stdin: the driver's "go" lines (after "waiting: offline").
const goLines = [];
let goWake = null;
let stdinClosed = false;
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  goLines.push(line.trim());
  if (goWake) goWake();
});
rl.on("close", () => {
  stdinClosed = true;
  if (goWake) goWake();
});

async function waitGo() {
  const end = Date.now() + args.timeoutMs;
  for (;;) {
    const line = goLines.shift();
    if (line === "go") return;
    if (line !== undefined) fail(`expected "go" on stdin, got ${show(line)}`);
    if (stdinClosed) fail('stdin closed before "go"');
    const left = end - Date.now();
    if (left <= 0) fail(`no "go" on stdin within ${args.timeoutMs} ms`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      goWake = () => {
        clearTimeout(timer);
        goWake = null;
        resolve();
      };
    });
  }
}

// ------------------------------------------------------------------------------------------------ order helpers

const run = Date.now().toString(36);

/** An RFC 3339 time with the store's offset (+08:00), `minutes` from now, whole seconds. */
function inShanghai(minutes) {
  const t = new Date(Date.now() + minutes * 60000 + 8 * 3600000);
  return t.toISOString().replace(/\.\d{3}Z$/, "+08:00");
}

/** The same instant in Z. */
function inZ(shanghai) {
  return new Date(shanghai).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function locIs(error, loc) {
  return (error.errors || []).some((e) => same(e.loc, loc));
}

// ------------------------------------------------------------------------------------------------ the flows

const ctx = {};

const flows = [
  [
    "hello_welcome",
    async () => {
      const app = (ctx.app = new Source(args.device, args.token, "app"));
      const w = await app.connect(0);
      check(w.resumed === false && w.snapshot !== null, "resume_from 0 gets a fresh snapshot");
      const store = w.store;
      check(Array.isArray(store.stations) && store.stations.length > 0, "the store has stations");
      check(Array.isArray(store.catalogue) && store.catalogue.length > 0, "a source's welcome has the catalogue");
      check(Array.isArray(store.methods) && store.methods.length > 0, "a source's welcome has the cooking methods");
      const allergens = store.allergens.map((a) => a.id);
      check(new Set(allergens).size === allergens.length, "allergen ids are unique");
      for (const a of store.allergens) check(a.name && a.name_zh, `allergen ${a.id} has English and Chinese names`);
      for (const id of ["sesame", "peanut", "dairy"]) check(allergens.includes(id), `the store declares ${id}`);
      check(!allergens.includes("peanutt"), "peanutt is not a declared allergen");
      const skus = new Map(store.catalogue.map((c) => [c.sku, c]));
      check(skus.size === store.catalogue.length, "catalogue SKUs are unique");
      for (const sku of ["WOK-KUNGPAO", "BAR-MILKTEA", "BAR-COCONUT", "BAK-EGGTART"]) {
        const c = skus.get(sku);
        check(c, `the catalogue sells ${sku}`);
        check(c.sold_by === "each" && c.min_weight_g === null, `${sku} is sold by the piece`);
        check(Object.keys(c.methods).length === 0, `${sku} needs no cooking method`);
        for (const a of c.allergens) check(allergens.includes(a), `${sku}'s allergen ${a} is declared`);
      }
      check(!skus.has("WOK-KUNGPAOO"), "WOK-KUNGPAOO is not sold");
      for (const c of store.catalogue) {
        for (const m of Object.keys(c.methods)) check(store.methods.some((x) => x.id === m), `${c.sku}'s method ${m}`);
      }
      ctx.milktea = skus.get("BAR-MILKTEA");
      const p = await app.request({ type: "ping", ref: newRef("ping") });
      check(p.type === "pong" && p.seq === w.seq, `pong ${show(p)} after welcome seq ${w.seq}`);
    },
  ],
  [
    "hello_refused",
    async () => {
      // Docs, "Connecting": a wrong token gets unauthorized and close 4001; no version in common, bad_hello and 4000.
      const cases = [
        [{ token: `${args.token}-wrong` }, "unauthorized", ["token"], 4001],
        [{ protocols: [99] }, "bad_hello", ["protocols"], 4000],
      ];
      for (const [change, code, loc, closeCode] of cases) {
        const conn = new Conn(`hello ${code}`, args.url);
        await conn.open();
        conn.send({ type: "hello", device: args.device, token: args.token, role: "source", ...change });
        const e = await conn.next(`the answer to a hello with ${show(change)}`);
        check(e.type === "error" && e.code === code && e.ref === null, `hello ${show(change)}: ${show(e)}`);
        check(locIs(e, loc), `${code} names ${show(loc)}: ${show(e.errors)}`);
        const closed = await conn.closedBy(code);
        check(closed.code === closeCode, `${code} closes with ${closeCode}, got ${show(closed)}`);
      }
    },
  ],
  [
    "submit",
    async () => {
      const due = inShanghai(40);
      ctx.orderA = {
        key: `partner-${run}-A`,
        channel: "app",
        fulfilment: { type: "delivery", due, address: "Biyun Rd 199, 2-1203" },
        customer: { name: "Wang L.", phone: "138****5521" },
        priority: "rush",
        items: [
          { sku: "WOK-KUNGPAO", qty: 2, modifiers: ["extra chili"], allergens: ["sesame"] },
          { sku: "BAR-MILKTEA", modifiers: ["less sugar", "no ice"] },
        ],
      };
      const ref = newRef("submit");
      const a = await ctx.app.submit(ctx.orderA, ref);
      check(a.type === "order.accepted", `expected order.accepted, got ${show(a)}`);
      check(a.ref === ref && a.duplicate === false && a.number.startsWith("A"), `order.accepted: ${show(a)}`);
      ctx.a = a;
    },
  ],
  [
    "duplicate",
    async () => {
      const again = await ctx.app.submit(ctx.orderA);
      check(again.type === "order.accepted" && again.duplicate === true, `resubmission: ${show(again)}`);
      check(again.order_id === ctx.a.order_id && again.number === ctx.a.number, "a duplicate names the first order");
      // Docs, idempotency: "qty: 1 and no qty … +08:00 and the same instant in Z are the same order".
      const spelt = JSON.parse(show(ctx.orderA));
      spelt.items[1].qty = 1;
      spelt.fulfilment.due = inZ(ctx.orderA.fulfilment.due);
      const third = await ctx.app.submit(spelt);
      check(third.type === "order.accepted" && third.duplicate === true, `same order spelt otherwise: ${show(third)}`);
      check(third.order_id === ctx.a.order_id, "the same order spelt otherwise names the first order");
    },
  ],
  [
    "conflict",
    async () => {
      const other = JSON.parse(show(ctx.orderA));
      other.items[0].qty = 3;
      const e = await ctx.app.submit(other);
      check(e.type === "error" && e.code === "conflict", `same key, another order: ${show(e)}`);
      check(locIs(e, ["order", "key"]) && e.errors[0].msg === e.message, `conflict errors: ${show(e.errors)}`);
      check(e.key === ctx.orderA.key && e.order_id === ctx.a.order_id && e.number === ctx.a.number, `conflict: ${show(e)}`);
    },
  ],
  [
    "invalid",
    async () => {
      // Well formed (the schema takes it) but not the store's: an unknown SKU and an allergen it does not declare.
      const e = await ctx.app.submit({
        key: `partner-${run}-bad-1`,
        channel: "app",
        fulfilment: { type: "delivery", due: inShanghai(30) },
        items: [{ sku: "WOK-KUNGPAOO" }, { sku: "BAR-MILKTEA", allergens: ["peanutt"] }],
      });
      check(e.type === "error" && e.code === "invalid_order", `unknown SKU and allergen: ${show(e)}`);
      check(locIs(e, ["order", "items", 0, "sku"]), `the error names items 0 sku: ${show(e.errors)}`);
      check(locIs(e, ["order", "items", 1, "allergens", 0]), `the error names items 1 allergens 0: ${show(e.errors)}`);
      check(e.errors.length === 2, `two problems, both listed: ${show(e.errors)}`);
      // Docs, validation: "message names the first and how many more there are"; allergens: "its message naming
      // the item".
      check(e.message.includes("WOK-KUNGPAOO") && e.message.includes("1 more"), `message: ${show(e.message)}`);
      const allergen = e.errors.find((x) => same(x.loc, ["order", "items", 1, "allergens", 0]));
      check(allergen.msg.includes(ctx.milktea.name) || allergen.msg.includes("BAR-MILKTEA"), `${show(allergen)}`);
      // Not well formed: the schema refuses it as the hub does (delivery without due, qty 0).
      const ref = newRef("bad");
      const m = await ctx.app.request(
        {
          type: "order.submit",
          ref,
          order: {
            key: `partner-${run}-bad-2`,
            channel: "app",
            fulfilment: { type: "delivery" },
            items: [{ sku: "WOK-MAPO", qty: 0 }],
          },
        },
        true,
      );
      check(m.type === "error" && m.code === "invalid_message" && m.ref === ref, `invalid message: ${show(m)}`);
      check(locIs(m, ["order", "fulfilment", "due"]), `the error names order.fulfilment.due: ${show(m.errors)}`);
      check(locIs(m, ["order", "items", 0, "qty"]), `the error names order.items.0.qty: ${show(m.errors)}`);
    },
  ],
  [
    "amend",
    async () => {
      const frame = {
        type: "order.amend",
        ref: newRef("amend"),
        order_id: ctx.a.order_id,
        add: [{ sku: "BAR-COCONUT" }],
        item_notes: { 1: "one without chili" },
        note: "call on arrival",
      };
      const ack = await ctx.app.request(frame);
      check(ack.type === "ack" && Number.isInteger(ack.seq) && ack.seq > 0, `amend: ${show(ack)}`);
      const again = await ctx.app.request(frame); // the same amendment resent: recognised by its ref
      check(again.type === "ack" && again.seq === null, `the same amendment resent: ${show(again)}`);
      const empty = await ctx.app.request({ type: "order.amend", ref: newRef("amend"), order_id: ctx.a.order_id });
      check(empty.type === "error" && empty.code === "invalid_order", `an amendment with no change: ${show(empty)}`);
      const unknown = await ctx.app.request({
        type: "order.amend",
        ref: newRef("amend"),
        order_id: ctx.a.order_id,
        remove: ["99"],
      });
      check(unknown.type === "error" && unknown.code === "invalid_order", `removing an unknown line: ${show(unknown)}`);
      check(locIs(unknown, ["remove", 0]), `the error names remove 0: ${show(unknown.errors)}`);
    },
  ],
  [
    "kiosk",
    async () => {
      if (!args.kioskDevice) return "skipped";
      const kiosk = (ctx.kiosk = new Source(args.kioskDevice, args.kioskToken, "kiosk"));
      await kiosk.connect(0);
      const e = await kiosk.submit({
        key: `partner-${run}-K-app`,
        channel: "app",
        fulfilment: { type: "pickup" },
        items: [{ sku: "BAK-EGGTART", qty: 2 }],
      });
      check(e.type === "error" && e.code === "forbidden" && locIs(e, ["order", "channel"]), `kiosk on app: ${show(e)}`);
      const a = await kiosk.submit({
        key: `partner-${run}-K`,
        channel: "kiosk",
        fulfilment: { type: "pickup" },
        items: [{ sku: "BAK-EGGTART", qty: 2 }],
      });
      check(a.type === "order.accepted" && a.number.startsWith("K") && !a.duplicate, `kiosk order: ${show(a)}`);
      const theirs = await kiosk.request({ type: "order.cancel", ref: newRef("k"), order_id: ctx.a.order_id });
      check(theirs.type === "error" && theirs.code === "forbidden", `a kiosk cancels the app's order: ${show(theirs)}`);
      check(locIs(theirs, ["order_id"]), `forbidden names order_id: ${show(theirs.errors)}`);
      const ack = await kiosk.request({ type: "order.cancel", ref: newRef("k"), order_id: a.order_id });
      check(ack.type === "ack" && Number.isInteger(ack.seq), `kiosk cancel: ${show(ack)}`);
      const s = await kiosk.until(a.order_id, "cancelled");
      check(s.reason === null, `cancelled without a reason: reason null, got ${show(s)}`);
      await kiosk.conn.close();
    },
  ],
  [
    "kitchen_and_counter",
    async () => {
      const app = ctx.app;
      const id = ctx.a.order_id;
      await app.waitFor(id, "preparing");
      const ready = await app.waitFor(id, "ready");
      const stations = app.welcome.store.stations.map((s) => s.id);
      check(ready.ready.length > 0 && ready.ready.every((s) => stations.includes(s)), `ready: ${show(ready)}`);
      const called = await app.waitFor(id, "called");
      check(same([...called.ready].sort(), [...ready.ready].sort()), `called keeps ready: ${show(called)}`);
      await app.waitFor(id, "handed_over");
      const amend = await app.request({ type: "order.amend", ref: newRef("amend"), order_id: id, note: "late" });
      check(amend.type === "error" && amend.code === "conflict", `amending a handed-over order: ${show(amend)}`);
      const cancel = await app.request({ type: "order.cancel", ref: newRef("cancel"), order_id: id });
      check(cancel.type === "error" && cancel.code === "conflict", `cancelling a handed-over order: ${show(cancel)}`);
      // The changes of status, each once (a repeated status only moves the estimate).
      const history = app.orders.get(id).history.map((s) => s.status).filter((s, k, all) => k === 0 || s !== all[k - 1]);
      check(same(history, ["accepted", "preparing", "ready", "called", "handed_over"]), `statuses: ${show(history)}`);
    },
  ],
  [
    "cancel",
    async () => {
      const b = await ctx.app.submit({
        key: `partner-${run}-B`,
        channel: "app",
        fulfilment: { type: "delivery", due: inShanghai(50) },
        items: [{ sku: "BAR-COCONUT", qty: 2 }],
      });
      check(b.type === "order.accepted" && !b.duplicate, `second order: ${show(b)}`);
      ctx.b = b;
      const reason = "customer changed their mind";
      const ack = await ctx.app.request({ type: "order.cancel", ref: newRef("cancel"), order_id: b.order_id, reason });
      check(ack.type === "ack" && Number.isInteger(ack.seq), `cancel: ${show(ack)}`);
      const s = await ctx.app.until(b.order_id, "cancelled");
      check(s.reason === reason && s.seq === ack.seq && same(s.ready, []), `cancelled status: ${show(s)}`);
      const again = await ctx.app.request({ type: "order.cancel", ref: newRef("cancel"), order_id: b.order_id, reason });
      check(again.type === "ack" && again.seq === null, `cancelling again changes nothing: ${show(again)}`);
    },
  ],
  [
    "resume",
    async () => {
      const app = ctx.app;
      const c = await app.submit({
        key: `partner-${run}-C`,
        channel: "app",
        fulfilment: { type: "delivery", due: inShanghai(60) },
        items: [{ sku: "WOK-KUNGPAO" }, { sku: "BAR-MILKTEA" }],
      });
      check(c.type === "order.accepted" && !c.duplicate, `third order: ${show(c)}`);
      await app.conn.close();
      const from = app.last;
      say(`waiting: offline ${c.order_id} ${from}`);
      await waitGo();
      const w = await app.connect(from);
      check(w.resumed === true && w.snapshot === null, `resume_from ${from}: expected resumed, got ${show(w.resumed)}`);
      const got = w.replayed.map((s) => `${s.order_id} ${s.status}`);
      check(w.replay === w.replayed.length && w.replay > 0, `replay ${w.replay}`);
      check(w.replayed.every((s) => s.seq > from && s.seq <= w.seq), `replayed seqs after ${from}: ${show(got)}`);
      check(same(w.replayed.map((s) => s.seq), [...w.replayed.map((s) => s.seq)].sort((x, y) => x - y)), "seq order");
      check(app.orders.get(c.order_id).status === "called", `after the replay: ${show(got)}`);
      check(app.last === w.seq, `resume point after the replay is welcome.seq (${app.last} vs ${w.seq})`);
      const h = await app.waitFor(c.order_id, "handed_over");
      check(h.seq > w.seq, "a live status after the replay has a later seq");
      ctx.c = c;
    },
  ],
  [
    "snapshot",
    async () => {
      // A fresh connection (resume_from 0): the snapshot's statuses are what this client ended with.
      const app = ctx.app;
      const kept = app.orders;
      await app.conn.close();
      const w = await app.connect(0);
      check(w.resumed === false, "resume_from 0 gets a snapshot");
      for (const o of [ctx.a, ctx.b, ctx.c]) {
        const mine = kept.get(o.order_id);
        const theirs = w.statuses.find((s) => s.order_id === o.order_id);
        check(theirs, `the snapshot holds ${o.order_id}`);
        const last = mine.history[mine.history.length - 1];
        check(same(theirs, last), `snapshot status of ${o.order_id} ${show(theirs)} is the last one received ${show(last)}`);
      }
      await app.conn.close();
    },
  ],
];

async function main() {
  let failed = false;
  for (const [name, flow] of flows) {
    if (failed) {
      summary.flows[name] = "not run";
      continue;
    }
    try {
      const r = await flow();
      summary.flows[name] = r === "skipped" ? "skipped" : "passed";
    } catch (e) {
      failed = true;
      summary.flows[name] = "failed";
      summary.failure = `${name}: ${e instanceof Failure ? e.message : e.stack || e}`;
    }
  }
  summary.ok = !failed && summary.schema_failures.length === 0;
  summary.elapsed_ms = Date.now() - started;
  say(JSON.stringify(summary));
  process.exit(summary.ok ? 0 : 1);
}

main();
