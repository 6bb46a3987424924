"""One LLVM module to machine code: the step of the direct compiler that `lanes.py` runs on
its threads (and `engine.py` in the calling thread).

Every lane builds its target machine from the same CPU name and feature string with
`target_machine` and runs `optimise_and_emit`, so an object file is the same bytes whichever
compiled it.
"""
from __future__ import annotations

import os

import llvmlite.binding as llb

# LLVM command-line options of every process that compiles; see `_set_llvm_options`
DEFAULT_LLVM_OPTIONS = ("-disable-lsr", "-unroll-threshold=100")
_options_set = []


def llvm_options():
    """The LLVM options in force: ``NUMBAX_LLVM_OPTIONS`` (space-separated; empty: none) or
    `DEFAULT_LLVM_OPTIONS`."""
    raw = os.environ.get("NUMBAX_LLVM_OPTIONS")
    return tuple(raw.split()) if raw is not None else DEFAULT_LLVM_OPTIONS


def _set_llvm_options():
    """Set `llvm_options()` once per process (LLVM rejects an option given twice).

    The defaults change how long LLVM takes, never a result's bits (neither reorders float
    arithmetic), and machine code made with them ran as fast (benchmarks/, same run, within
    3%; the CNN step 6% faster):

    - ``-disable-lsr``: loop strength reduction rewrites integer address arithmetic. It was
      the most expensive pass of a cold start (13% of the digits CNN's LLVM time; 0.29 of
      0.35 s on one module whose loop feeds a counter into Threefry).
    - ``-unroll-threshold=100`` (O3: 300): loops are fully unrolled only up to this size.
      Vectorised loops of a few iterations were being copied out whole: without that, the
      digits CNN's modules take 23% less LLVM time and their object code is 26% smaller.
      Kernels whose speed needs an unrolled loop are written out (`kernels.threefry2x32`).

    The options are process-wide: Numba's own compiles in this process get them too.
    """
    if _options_set:
        return
    _options_set.append(True)
    for opt in llvm_options():
        llb.set_option("", opt)


def target_machine(cpu, features):
    """A target machine for this host's triple (as Numba's CPU target: static relocation for
    JIT code on x86, O3)."""
    llb.initialize_native_target()
    llb.initialize_native_asmprinter()
    _set_llvm_options()
    target = llb.Target.from_triple(llb.get_process_triple())
    reloc = "static" if target.name.startswith("x86") else "default"
    return target.create_target_machine(cpu=cpu, features=features, opt=3, reloc=reloc,
                                        codemodel="jitdefault", jit=True)


def optimise_and_emit(tm, ir_text, context=None):
    """Parse (into `context`, default llvmlite's global one), verify, optimise (the new pass
    manager at speed level 3 with loop and SLP vectorisation, Numba's settings for its final
    module) and emit module `ir_text`: its object file's bytes. Everything made here is
    disposed of here, in the calling thread (see `lanes.py`)."""
    mod = llb.parse_assembly(ir_text, context)
    pto = pb = mpm = None
    try:
        mod.verify()
        pto = llb.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pb = llb.create_pass_builder(tm, pto)
        mpm = pb.getModulePassManager()
        mpm.run(mod, pb)
        return tm.emit_object(mod)
    finally:
        for obj in (mpm, pb, pto, mod):
            if obj is not None:
                obj.close()
