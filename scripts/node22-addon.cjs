// Preloaded (NODE_OPTIONS=--require) by scripts/node22-tests.sh: the workspace's better-sqlite3
// addon is compiled for the Node.js that installed it (20); under another Node, every load of it
// goes to the build for that Node named by DATALAB_BETTER_SQLITE3_ADDON, so both runs share
// one node_modules and neither rebuild disturbs the other.
"use strict";
const Module = require("node:module");
const { join, sep } = require("node:path");
const addon = process.env.DATALAB_BETTER_SQLITE3_ADDON;
// Only the workspace's own copy: a release unpacked by a test brings the addon for its Node.
const workspace = join(__dirname, "..", "node_modules") + sep;
if (addon) {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    const file = resolve.call(this, request, ...rest);
    return file.startsWith(workspace) &&
      /[\\/]better-sqlite3[\\/]build[\\/]Release[\\/]better_sqlite3\.node$/.test(file)
      ? addon
      : file;
  };
}
