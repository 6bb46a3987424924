"""One LLVM module to machine code: the step of the direct compiler that can run anywhere.

This module imports nothing but llvmlite, so it is also the program of the compile worker
process (``python codegen.py CPU FEATURES``, started by `lanes.py`): a new Python process
reaches its loop in 0.05-0.15 s (importing llvmlite is most of it). The process that
compiles and its worker build their target machines from the same CPU name and feature
string with `target_machine`, and both run `optimise_and_emit`, so an object file is the
same bytes whichever compiled it.

The worker's protocol on its standard streams (binary, lengths as 8-byte little-endian):
it writes ``R`` once ready; then for each request (``C``, length, LLVM IR text) it answers
``O`` (length, object file) or ``E`` (length, the error's text), until its input closes.
"""
from __future__ import annotations

import os
import struct
import sys

import llvmlite.binding as llb

READY, REQUEST, OK, ERROR = b"R", b"C", b"O", b"E"
_LEN = struct.Struct("<Q")


# LLVM command-line options of every process that compiles (this one and the worker); see
# `_set_llvm_options`
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


def optimise_and_emit(tm, ir_text):
    """Parse, verify, optimise (the new pass manager at speed level 3 with loop and SLP
    vectorisation, Numba's settings for its final module) and emit module `ir_text`: its
    object file's bytes."""
    mod = llb.parse_assembly(ir_text)
    mod.verify()
    pto = llb.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llb.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return tm.emit_object(mod)


def read_exact(stream, n):
    """`n` bytes from `stream`, or None at its end."""
    parts = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def write_frame(stream, tag, payload):
    stream.write(tag + _LEN.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream):
    """(tag, payload) of the next frame of `stream`, or None at its end."""
    tag = read_exact(stream, 1)
    if tag is None:
        return None
    head = read_exact(stream, _LEN.size)
    if head is None:
        return None
    payload = read_exact(stream, _LEN.unpack(head)[0])
    return None if payload is None else (tag, payload)


def serve(cpu, features, inp, out):
    """The worker's loop: compile each module read from `inp`, answer on `out`."""
    tm = target_machine(cpu, features)
    out.write(READY)
    out.flush()
    while True:
        frame = read_frame(inp)
        if frame is None or frame[0] != REQUEST:
            return
        try:
            write_frame(out, OK, optimise_and_emit(tm, frame[1].decode()))
        except Exception as e:                 # noqa: BLE001 - reported to the parent
            write_frame(out, ERROR, f"{type(e).__name__}: {e}".encode())


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.stdin.buffer, sys.stdout.buffer)
