// ESLint with typescript-eslint's type-aware rules. Why these rules: docs/development.md,
// "Linting and import cycles".
import js from '@eslint/js';
import {defineConfig} from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
	{
		ignores: ['dist/**', 'dist-check/**', 'coverage/**', 'node_modules/**'],
	},
	js.configs.recommended,
	tseslint.configs.recommendedTypeChecked,
	{
		languageOptions: {
			parserOptions: {
				// Each file is checked with the tsconfig.json nearest to it (the simulator has its own).
				projectService: true,
				tsconfigRootDir: import.meta.dirname,
			},
		},
		linterOptions: {
			reportUnusedDisableDirectives: 'error',
		},
		rules: {
			'@typescript-eslint/no-floating-promises': 'error',
			'@typescript-eslint/no-misused-promises': 'error',
			'@typescript-eslint/no-unnecessary-type-assertion': 'error',
			// From the strict set, the two that find bugs rather than style: a new member of a union
			// (a death reason, a payload state) must reach every switch over it, and deprecated APIs
			// (XState's, Node's) are replaced before they are removed.
			'@typescript-eslint/switch-exhaustiveness-check': ['error', {considerDefaultExhaustiveForUnions: true}],
			'@typescript-eslint/no-deprecated': 'error',
			'@typescript-eslint/no-unused-vars': ['error', {
				args: 'after-used',
				argsIgnorePattern: '^_',
				varsIgnorePattern: '^_',
				caughtErrors: 'all',
				caughtErrorsIgnorePattern: '^_',
				ignoreRestSiblings: true,
			}],
			// `verbatimModuleSyntax` already makes type-only imports explicit; these two keep the
			// spelling uniform and stop `import {type X} from 'm'` from loading `m` at run time.
			'@typescript-eslint/consistent-type-imports': ['error', {prefer: 'type-imports', fixStyle: 'inline-type-imports'}],
			'@typescript-eslint/no-import-type-side-effects': 'error',
		},
	},
	{
		// Plain JavaScript config and build scripts: no types to check them against.
		files: ['**/*.js'],
		extends: [tseslint.configs.disableTypeChecked],
	},
);
