/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    // The simulator imports the library's light module by the package's own name, as an installed
    // program would; tests run them from source.
    '^vmwarden/payload-protocol$': '<rootDir>/src/services/payload/protocol.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, isolatedModules: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 30000,
  // Ends each file's idle spawner process before the next file takes its baselines.
  setupFilesAfterEnv: ['<rootDir>/test/helpers/jest-setup.ts'],
  // Most tests wait on processes, sockets and timers rather than compute: on a 2-core machine two
  // workers leave the cores half idle, four finish the suite in about half the time.
  maxWorkers: 4,
  // execa's exit hook keeps a global emitter that Jest 30's globals cleanup breaks.
  testEnvironmentOptions: {globalsCleanup: 'off'},
};
