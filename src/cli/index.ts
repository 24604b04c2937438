// The `isoplug` executable (package.json `bin`); tsup adds the `#!/usr/bin/env node` line.
import { processIo } from './io.js';
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2), processIo);
