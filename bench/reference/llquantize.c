// llquantize: writes a K-quant (or any llama_ftype) copy of a GGUF with the llama.cpp reference's own
// quantizer (llama_model_quantize from node-llama-cpp's prebuilt libllama), so hearth and llama.cpp can be
// benchmarked on the mixed-type files people download (Q4_K_M, Q5_K_M, Q6_K). `hearth synth` only writes
// the types whose reference rounding hearth reproduces; this tool is for speed work, not for goldens.
// Built and run by scripts/make-kquant-model.sh.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static const struct {
  const char* name;
  enum llama_ftype ftype;
} kTypes[] = {
    {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S},
    {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S},
    {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},     {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},
    {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},     {"F16", LLAMA_FTYPE_MOSTLY_F16},
    {"BF16", LLAMA_FTYPE_MOSTLY_BF16},
};

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s IN.gguf OUT.gguf TYPE [THREADS]   (TYPE:", argv[0]);
    for (size_t i = 0; i < sizeof kTypes / sizeof kTypes[0]; ++i) fprintf(stderr, " %s", kTypes[i].name);
    fprintf(stderr, ")\n");
    return 2;
  }
  struct llama_model_quantize_params p = llama_model_quantize_default_params();
  int found = 0;
  for (size_t i = 0; i < sizeof kTypes / sizeof kTypes[0]; ++i)
    if (strcmp(argv[3], kTypes[i].name) == 0) {
      p.ftype = kTypes[i].ftype;
      found = 1;
    }
  if (!found) {
    fprintf(stderr, "llquantize: unknown type '%s'\n", argv[3]);
    return 2;
  }
  p.nthread = argc > 4 ? atoi(argv[4]) : 0;
  p.allow_requantize = 1;  // random-weight sources may already be quantised (speed work only)
  llama_backend_init();
  const uint32_t rc = llama_model_quantize(argv[1], argv[2], &p);
  llama_backend_free();
  if (rc != 0) fprintf(stderr, "llquantize: llama_model_quantize failed (%u)\n", rc);
  return rc == 0 ? 0 : 1;
}
