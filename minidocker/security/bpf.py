"""Stage 9 — classic BPF: the tiny machine a seccomp filter is written for.

A seccomp filter is a program for the kernel's classic BPF machine (the one tcpdump uses):
one 32-bit accumulator ``A``, an index register ``X``, 16 scratch words ``M[]``, and a packet
to read — for seccomp the 64-byte ``struct seccomp_data`` of the system call being made.
Each instruction is a ``struct sock_filter`` of 8 bytes: a 16-bit ``code`` (class | size |
mode, or class | operation | source), two 8-bit jump offsets ``jt``/``jf`` (how many
instructions to skip forward when a test is true/false) and a 32-bit constant ``k``.
Jumps only go forward, so every program ends: the kernel can check it before it runs it.

``Assembler`` writes such a program with named labels instead of counted offsets;
``Program.disassemble()`` prints it in ``bpf_asm`` syntax, ``Program.explain()`` as
seccomp-tools' ``dump`` would, so a notebook can show what the kernel will run.

Man pages: seccomp(2), bpf(4) on the BSDs; the kernel's Documentation/networking/filter.rst
("Linux Socket Filtering aka Berkeley Packet Filter") is the reference, and its
tools/bpf/bpf_asm the assembler this one imitates. Used by: seccomp.py, notebook 09-security.
"""

import functools
import struct
from dataclasses import dataclass, field

from minidocker import kernel
from minidocker.errors import MinidockerError

# <linux/bpf_common.h>: instruction classes ...
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
# ... load sizes and addressing modes ...
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN, BPF_MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
# ... ALU operations and jump tests ...
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG, BPF_MOD, \
    BPF_XOR = (0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0)
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
# ... and where the operand comes from: the constant k, the register X, or (for ret) A.
BPF_K, BPF_X, BPF_A = 0x00, 0x08, 0x10
BPF_TAX, BPF_TXA = 0x00, 0x80

BPF_MAXINSNS = 4096  # the kernel refuses longer classic programs (<linux/bpf_common.h>)

# Where each field of struct seccomp_data is, for ``ld [k]`` (x86_64 and aarch64 are
# little-endian, so the low 32 bits of args[i] come first).
SECCOMP_DATA = {0: "sys_number", 4: "arch", 8: "instruction_pointer",
                12: "instruction_pointer >> 32"}
SECCOMP_DATA |= {16 + 8 * i: f"args[{i}]" for i in range(6)}
SECCOMP_DATA |= {20 + 8 * i: f"args[{i}] >> 32" for i in range(6)}

_ALU_OPS = {BPF_ADD: ("add", "+="), BPF_SUB: ("sub", "-="), BPF_MUL: ("mul", "*="),
            BPF_DIV: ("div", "/="), BPF_OR: ("or", "|="), BPF_AND: ("and", "&="),
            BPF_LSH: ("lsh", "<<="), BPF_RSH: ("rsh", ">>="), BPF_MOD: ("mod", "%="),
            BPF_XOR: ("xor", "^=")}
_JUMPS = {BPF_JEQ: ("jeq", "==", "!="), BPF_JGT: ("jgt", ">", "<="),
          BPF_JGE: ("jge", ">=", "<"), BPF_JSET: ("jset", "&", "& ~")}


@dataclass(frozen=True)
class Instruction:
    """One ``struct sock_filter``: ``{code, jt, jf, k}``."""

    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0

    FORMAT = "=HBBI"  # u16 code, u8 jt, u8 jf, u32 k, in the machine's byte order

    def pack(self) -> bytes:
        return struct.pack(self.FORMAT, self.code, self.jt, self.jf, self.k)

    @classmethod
    def unpack(cls, raw: bytes) -> "Instruction":
        return cls(*struct.unpack(cls.FORMAT, raw))


@functools.lru_cache(maxsize=4096)
def shared_instruction(raw: bytes) -> Instruction:
    """``Instruction.unpack``, one object for equal bytes (an Instruction is frozen)."""
    return Instruction.unpack(raw)


def return_name(k: int) -> str:
    """A seccomp return value in words: ``ALLOW``, ``ERRNO(1)``, ``KILL_PROCESS``..."""
    action, data = k & kernel.SECCOMP_RET_ACTION_FULL, k & kernel.SECCOMP_RET_DATA
    named = {kernel.SECCOMP_RET_KILL_PROCESS: "KILL_PROCESS",
             kernel.SECCOMP_RET_KILL_THREAD: "KILL", kernel.SECCOMP_RET_TRAP: "TRAP",
             kernel.SECCOMP_RET_ERRNO: "ERRNO", kernel.SECCOMP_RET_USER_NOTIF: "USER_NOTIF",
             kernel.SECCOMP_RET_TRACE: "TRACE", kernel.SECCOMP_RET_LOG: "LOG",
             kernel.SECCOMP_RET_ALLOW: "ALLOW"}
    if action not in named:
        return hex(k)
    if action in (kernel.SECCOMP_RET_ERRNO, kernel.SECCOMP_RET_TRACE, kernel.SECCOMP_RET_TRAP):
        return f"{named[action]}({data})"
    return named[action]


@dataclass
class Program:
    """An assembled program, with the assembler's comments (line -> text) for reading."""

    instructions: list[Instruction]
    comments: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instructions)

    def to_bytes(self) -> bytes:
        """The program as the kernel reads it: an array of struct sock_filter."""
        return b"".join(ins.pack() for ins in self.instructions)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Program":
        """The program read back from its bytes (a container's record keeps them). Equal
        instructions come back as one shared object: every container of the default profile
        holds the same ~100, so a process that keeps many records (the daemon's monitor host)
        pays for them once."""
        size = struct.calcsize(Instruction.FORMAT)
        return cls([shared_instruction(raw[i:i + size]) for i in range(0, len(raw), size)])

    def disassemble(self) -> str:
        """The program in ``bpf_asm`` syntax, jump targets as line labels (``l5``)."""
        lines = []
        for n, ins in enumerate(self.instructions):
            text = f"{f'l{n}:':<7}{_asm(n, ins)}"
            if n in self.comments:
                text = f"{text:<36} ; {self.comments[n]}"
            lines.append(text)
        return "\n".join(lines)

    def explain(self) -> str:
        """The program as ``seccomp-tools dump`` prints it: raw fields, then its meaning."""
        lines = [" line  CODE  JT   JF      K", "=================================="]
        for n, ins in enumerate(self.instructions):
            text = (f" {n:04d}: 0x{ins.code:02x} 0x{ins.jt:02x} 0x{ins.jf:02x} 0x{ins.k:08x}"
                    f"  {_meaning(n, ins)}")
            if n in self.comments:
                text = f"{text:<70} # {self.comments[n]}"
            lines.append(text)
        return "\n".join(lines)


def _asm(n: int, ins: Instruction) -> str:
    """One instruction in bpf_asm's syntax (the subset seccomp filters use, plus a few)."""
    cls, code, k = ins.code & 0x07, ins.code, ins.k
    if cls in (BPF_LD, BPF_LDX):
        op = "ld" if cls == BPF_LD else "ldx"
        op += {BPF_W: "", BPF_H: "h", BPF_B: "b"}.get(code & 0x18, "?")
        mode = code & 0xE0
        where = {BPF_IMM: f"#{k:#x}", BPF_ABS: f"[{k}]", BPF_IND: f"[x + {k}]",
                 BPF_MEM: f"M[{k}]", BPF_LEN: "#len", BPF_MSH: f"4*([{k}]&0xf)"}.get(mode)
        if where is not None:
            return f"{op} {where}"
    if cls in (BPF_ST, BPF_STX):
        return f"{'st' if cls == BPF_ST else 'stx'} M[{k}]"
    if cls == BPF_ALU:
        if code & 0xF0 == BPF_NEG:
            return "neg"
        name = _ALU_OPS.get(code & 0xF0, ("?",))[0]
        return f"{name} {'x' if code & BPF_X else f'#{k:#x}'}"
    if cls == BPF_JMP:
        if code & 0xF0 == BPF_JA:
            return f"ja l{n + 1 + k}"
        name = _JUMPS.get(code & 0xF0, ("?",))[0]
        operand = "x" if code & BPF_X else f"#{k:#x}"
        return f"{name} {operand}, l{n + 1 + ins.jt}, l{n + 1 + ins.jf}"
    if cls == BPF_RET:
        return "ret a" if code & 0x18 == BPF_A else f"ret #{k:#x}"
    if cls == BPF_MISC:
        return "txa" if code & 0xF8 == BPF_TXA else "tax"
    return f".word {code:#06x}, {ins.jt}, {ins.jf}, {k:#x}"


def _meaning(n: int, ins: Instruction) -> str:
    """One instruction as C-like pseudo-code about struct seccomp_data, like seccomp-tools."""
    cls, code, k = ins.code & 0x07, ins.code, ins.k
    if cls == BPF_LD and code & 0xE0 == BPF_ABS and code & 0x18 == BPF_W:
        return f"A = {SECCOMP_DATA.get(k, f'data[{k}]')}"
    if cls == BPF_ALU and code & 0xF0 in _ALU_OPS and not code & BPF_X:
        return f"A {_ALU_OPS[code & 0xF0][1]} {k:#x}"
    if cls == BPF_JMP and code & 0xF0 == BPF_JA:
        return f"goto {n + 1 + k:04d}"
    if cls == BPF_JMP and code & 0xF0 in _JUMPS and not code & BPF_X:
        _, true_op, false_op = _JUMPS[code & 0xF0]
        to_true, to_false = n + 1 + ins.jt, n + 1 + ins.jf
        if ins.jt == 0:
            return f"if (A {false_op} {k:#x}) goto {to_false:04d}"
        if ins.jf == 0:
            return f"if (A {true_op} {k:#x}) goto {to_true:04d}"
        return f"if (A {true_op} {k:#x}) goto {to_true:04d} else goto {to_false:04d}"
    if cls == BPF_RET:
        return "return A" if code & 0x18 == BPF_A else f"return {return_name(k)}"
    return _asm(n, ins)


class Assembler:
    """Write a program line by line; jumps name labels, ``assemble()`` counts the offsets."""

    def __init__(self) -> None:
        self._lines: list[tuple[int, int | str, int | str, int | str]] = []
        self._labels: dict[str, int] = {}
        self._comments: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._lines)

    def _emit(self, code: int, jt: int | str = 0, jf: int | str = 0, k: int | str = 0,
              comment: str = "") -> None:
        if comment:
            self._comments[len(self._lines)] = comment
        self._lines.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        """Name the next instruction, as a jump target."""
        if name in self._labels:
            raise ValueError(f"label {name!r} defined twice")
        self._labels[name] = len(self._lines)

    def load(self, offset: int, comment: str = "") -> None:
        """``ld [offset]``: A = the 32-bit word at ``offset`` of struct seccomp_data."""
        self._emit(BPF_LD | BPF_W | BPF_ABS, k=offset, comment=comment)

    def and_(self, value: int, comment: str = "") -> None:
        """``and #value``: A &= value."""
        self._emit(BPF_ALU | BPF_AND | BPF_K, k=value, comment=comment)

    def jump_if(self, test: int, value: int, true: int | str = 0, false: int | str = 0,
                comment: str = "") -> None:
        """``jeq``/``jgt``/``jge``/``jset #value, true, false``: a label, or 0 for the next
        instruction. Only 255 instructions can be skipped this way."""
        self._emit(BPF_JMP | test | BPF_K, true, false, value, comment)

    def goto(self, target: str, comment: str = "") -> None:
        """``ja target``: an unconditional jump, which can go as far as it likes."""
        self._emit(BPF_JMP | BPF_JA, k=target, comment=comment)

    def ret(self, value: int, comment: str = "") -> None:
        """``ret #value``: the program's verdict."""
        self._emit(BPF_RET | BPF_K, k=value, comment=comment)

    def assemble(self) -> Program:
        """Resolve the labels into forward offsets and check the kernel's limits."""
        if len(self._lines) > BPF_MAXINSNS:
            raise MinidockerError(
                f"the seccomp filter needs {len(self._lines)} BPF instructions, more than the "
                f"kernel's limit of {BPF_MAXINSNS}: use fewer rules (or fewer arguments checks)")
        out = []
        for n, (code, jt, jf, k) in enumerate(self._lines):
            jt, jf = self._offset(n, jt, 255), self._offset(n, jf, 255)
            k = self._offset(n, k, 0xFFFFFFFF) if isinstance(k, str) else k
            out.append(Instruction(code, jt, jf, k))
        return Program(out, dict(self._comments))

    def _offset(self, n: int, target: int | str, limit: int) -> int:
        if isinstance(target, int):
            return target
        offset = self._labels[target] - (n + 1)
        if not 0 <= offset <= limit:
            raise MinidockerError(f"BPF jump from line {n} to {target!r} spans {offset} "
                                  f"instructions; a conditional jump reaches at most {limit}")
        return offset
