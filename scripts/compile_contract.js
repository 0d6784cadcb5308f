#!/usr/bin/env node
// Compile medvault_resources/contracts/ConsentRegistry.sol with the pinned npm `solc` and write its artifact.
// Usage: node scripts/compile_contract.js [OUTPUT.json]   (default: medvault_resources/contracts/ConsentRegistry.json)
// The settings below are part of the artifact: a test recompiles and compares the output byte for byte, so any
// change here must be committed together with a regenerated artifact.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const solc = require(path.join(root, 'node_modules', 'solc'));

const SOURCE_NAME = 'ConsentRegistry.sol';
const CONTRACT = 'ConsentRegistry';
// london: no PUSH0/MCOPY, so the same bytecode runs on GoQuorum, Besu, ganache and py-evm alike.
const SETTINGS = {
  optimizer: { enabled: true, runs: 10000 },
  evmVersion: 'london',
  metadata: { bytecodeHash: 'ipfs' },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.deployedBytecode.immutableReferences'] } },
};

const sourcePath = path.join(root, 'medvault_resources', 'contracts', SOURCE_NAME);
const out = process.argv[2] || path.join(root, 'medvault_resources', 'contracts', `${CONTRACT}.json`);
const input = {
  language: 'Solidity',
  sources: { [SOURCE_NAME]: { content: fs.readFileSync(sourcePath, 'utf8') } },
  settings: SETTINGS,
};
const result = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (result.errors || []).filter((e) => e.severity === 'error');
for (const e of result.errors || []) process.stderr.write(e.formattedMessage + '\n');
if (errors.length) process.exit(1);

const c = result.contracts[SOURCE_NAME][CONTRACT];
const artifact = {
  contractName: CONTRACT,
  sourceName: `medvault_resources/contracts/${SOURCE_NAME}`,
  compiler: { name: 'solc-js', version: solc.version() },
  settings: SETTINGS,
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
  deployedBytecode: '0x' + c.evm.deployedBytecode.object,
  // Byte ranges the constructor fills in (chain id, domain separator): masked when checking deployed code.
  immutableReferences: c.evm.deployedBytecode.immutableReferences,
};
fs.writeFileSync(out, JSON.stringify(artifact, null, 2) + '\n');
process.stdout.write(`wrote ${out} (solc ${solc.version()})\n`);
