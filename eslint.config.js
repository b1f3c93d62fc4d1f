// Lint rules the project holds. The one that matters most: code that runs inside an isolate or
// anywhere the kernel runs (src/kernel, src/sandbox) imports nothing but its own files — no Node
// API, no packages — so it can be compiled into an isolated-vm isolate unchanged.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const onlyRelative = {
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        { regex: '^(?!\\.)', message: 'kernel and sandbox code runs in isolates: import only relative project files (no node: modules, no packages).' },
      ],
    },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'examples/modules/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  { files: ['src/kernel/**/*.ts', 'src/sandbox/**/*.ts'], rules: onlyRelative },
  {
    // The kernel must not even import the wire or host layers: it sits below them.
    files: ['src/kernel/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!\\.)', message: 'the kernel runs in isolates: no node: modules, no packages.' },
            { regex: '^\\.\\./(host|node|cli|wire|compiler)/', message: 'the kernel sits below the host, node, wire, compiler and CLI layers.' },
          ],
        },
      ],
    },
  },
);
