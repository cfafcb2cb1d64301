// Scenario: initial sync of a fresh, empty peer B from a peer A that is already
// running and has indexed the corpus. The clock starts just before B is spawned
// and stops when the tool reports B complete (and B's tree is then verified).
import { BenchError, compareTree, now, rmrf, systemBusyCpu, tmpDir, watchSubset } from '../lib/util.mjs';
import { incremental, propagation } from './follow-ups.mjs';

export default {
  name: 'initial-sync',

  /**
   * @param tool    a tool object (see bench/tools/*.mjs)
   * @param corpus  { dir, files, bytes, entries }
   * @param opts    { setupTimeoutS, syncTimeoutS, propagationRuns }
   */
  async run(tool, corpus, { setupTimeoutS, syncTimeoutS, propagationRuns = 20 }) {
    const dirB = tmpDir(`${tool.name}-b`);
    let watch, watchThemes;
    try {
      const ts = now();
      await tool.setupA(corpus.dir, corpus, { deadline: ts + setupTimeoutS });
      const setupS = now() - ts;

      const subset = corpus.entries.filter((e) => e.path.startsWith('themes/') || e.path.startsWith('plugins/'));
      const themes = corpus.entries.filter((e) => e.path.startsWith('themes/'));
      const t0 = now();
      const cpu0 = process.cpuUsage();
      const sys0 = systemBusyCpu();
      await tool.startB(dirB, { deadline: t0 + syncTimeoutS });
      watch = watchSubset(dirB, subset);
      watchThemes = watchSubset(dirB, themes);
      // each tool resolves with the instant it was seen to be done (its own word, or rsync's
      // exit), before the harness verifies B's tree: that walk is the bench's work
      const t1 = await tool.waitComplete({ deadline: t0 + syncTimeoutS });
      if (typeof t1 !== 'number') throw new BenchError(`${tool.name}: waitComplete gave no completion time`);
      const cpu1 = process.cpuUsage(cpu0);
      const sys1 = systemBusyCpu();
      const m = await tool.measure();

      const mismatch = compareTree(dirB, corpus, tool.ignore);
      if (mismatch) throw new BenchError(`B finished but its tree differs from the corpus: ${mismatch}`);
      // The subset is complete by t1 at the latest (the whole tree was verified).
      const tp = watch.done ? Math.min(await watch.promise, t1) : t1;
      const tt = watchThemes.done ? Math.min(await watchThemes.promise, t1) : t1;
      // a tool that says when the node may serve visitors (sync-agent's `ready`)
      const readyAt = tool.readyAt?.() ?? null;
      // a sync tool's own word that nothing is left (after its post-sync rescan): sync-agent's
      // inSync, Syncthing's idle; not the clock, which stops when every file is here
      const settledAt = tool.settledAt?.() ?? null;

      // the pair is in sync and still running: new uploads and a 1% change
      // (a baseline that only does the initial sync, like the hypercore floor, has none)
      const follow = tool.initialSyncOnly ? {} : {
        ...(await propagation(tool, corpus.dir, dirB, { runs: propagationRuns, timeoutS: 60 })),
        ...(await incremental(tool, corpus, corpus.dir, dirB, { timeoutS: syncTimeoutS })),
      };

      const wallS = t1 - t0;
      const harnessCpuS = (cpu1.user + cpu1.system) / 1e6;
      // CPU used by anything else on the machine during the sync: a busy machine skews every figure
      const otherCpuS = sys0 != null && m.cpuB != null
        ? Math.max(0, sys1 - sys0 - harnessCpuS - m.cpuB - (m.cpuA ?? 0)) : null;
      return {
        ok: true,
        setupAS: setupS,
        wallS,
        mibPerS: corpus.bytes / 1048576 / wallS,
        filesPerS: corpus.files / wallS,
        themesPluginsS: tp - t0,
        themesPluginsFiles: subset.length,
        themesS: tt - t0,
        readyS: readyAt == null ? null : readyAt - t0,
        settledS: settledAt == null ? null : settledAt - t0,
        harnessCpuS, // the bench's own polling during the sync
        otherCpuS,
        ...m,
        ...follow,
      };
    } finally {
      watch?.stop();
      watchThemes?.stop();
      await tool.stop();
      await rmrf(dirB);
    }
  },
};
