// Loads the protocol's published documents in ajv, the most used JSON Schema validator, as a partner would.
//
//   node validate.js schema SCHEMA.json FRAMES.json   the JSON Schema (`kds schema`), compiled by ajv's draft 2020-12
//                                                      build in strict mode with ajv-formats, no keyword added;
//                                                      FRAMES.json is [{id, direction: "client"|"hub", frame}]
//   node validate.js asyncapi ASYNCAPI.json            the AsyncAPI document (`kds schema --asyncapi`), validated
//                                                      against the official AsyncAPI 3.0.0 JSON Schema (@asyncapi/specs)
//
// Prints one JSON object on stdout ({loaded, error, results: [{id, valid, errors}]} or {valid, errors}) and exits 0
// when it could say; tests/test_schema_standard.py and tests/test_asyncapi.py run it and judge the answer.
"use strict";

const fs = require("fs");
const path = require("path");
const addFormats = require("ajv-formats");

const read = (file) => JSON.parse(fs.readFileSync(file, "utf8"));

function checkSchema(schemaFile, framesFile) {
  const Ajv2020 = require("ajv/dist/2020");
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const schema = read(schemaFile);
  let validators;
  try {
    ajv.addSchema(schema, "kds.json");
    validators = {
      all: ajv.compile({ $ref: "kds.json" }),
      client: ajv.compile({ $ref: "kds.json#/$defs/ClientMessage" }),
      hub: ajv.compile({ $ref: "kds.json#/$defs/HubMessage" }),
    };
  } catch (e) {
    return { loaded: false, error: String(e.message || e), results: [] };
  }
  const results = read(framesFile).map(({ id, direction, frame }) => {
    const one = validators[direction];
    const valid = one(frame) && validators.all(frame);
    const errors = (one.errors || validators.all.errors || []).map((e) => `${e.instancePath || "/"} ${e.message}`);
    return { id, valid, errors };
  });
  return { loaded: true, error: null, results };
}

function checkAsyncapi(documentFile) {
  const Ajv = require("ajv"); // the official AsyncAPI schema is draft 07
  // It embeds the draft 07 meta-schema itself: ajv must not add its own copy (meta: false).
  const ajv = new Ajv({ strict: false, allErrors: true, meta: false, validateSchema: false });
  addFormats(ajv);
  const specs = path.join(path.dirname(require.resolve("@asyncapi/specs/package.json")), "schemas", "3.0.0.json");
  const validate = ajv.compile(read(specs));
  const valid = validate(read(documentFile));
  const errors = (validate.errors || []).map((e) => `${e.instancePath || "/"} ${e.message}`);
  return { valid, errors };
}

const [command, ...args] = process.argv.slice(2);
let answer;
if (command === "schema" && args.length === 2) answer = checkSchema(args[0], args[1]);
else if (command === "asyncapi" && args.length === 1) answer = checkAsyncapi(args[0]);
else {
  process.stderr.write("usage: node validate.js schema SCHEMA.json FRAMES.json | asyncapi ASYNCAPI.json\n");
  process.exit(2);
}
process.stdout.write(JSON.stringify(answer) + "\n");
