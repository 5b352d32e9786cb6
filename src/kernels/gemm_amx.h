// Intel AMX (Advanced Matrix Extensions: Sapphire Rapids and later Xeons) int8 tile kernels for the prompt
// path. One tile multiply computes a 16 tokens x 16 rows x 32 products block of integer sums; the float
// steps around it are the reference's (quant.h dot_q4_0_seq, dot_q8_0_seq), so results are bit-identical.
#pragma once
#include <cstdint>

#include "kernels/gemm.h"

namespace hearth::kernels::gemm::amx {

// True when the CPU has AMX-TILE and AMX-INT8 with AVX-512, the OS saves tile state and (Linux) granted this
// process the tile data permission. HEARTH_AMX=0 turns AMX off.
bool available();

// Q4_0 x Q8_0 in the q4_0_seq order (quant.h dot_q4_0_seq) for any number of tokens. Args::n_rows is a
// multiple of 16; Args::acts are Q8_0 rows with Args::act_d; Args::scratch holds gemm::scratch_bytes(n_in).
void q4_0_seq(const Args& a);     // Args::w: plain Q4_0 rows
void q4_0_packed(const Args& a);  // Args::w: the first packed group (gemm::pack_q4_0)
// Q8_0 x Q8_0 in the block order of AMX machines (quant.h dot_q8_0_seq), likewise.
void q8_0_seq(const Args& a);
void q8_0_packed(const Args& a);  // Args::w: the first packed group (gemm::pack_q8_0)

}  // namespace hearth::kernels::gemm::amx
