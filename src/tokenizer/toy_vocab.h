// Tokenizer sections for files written by `hearth synth`: a small built-in Gemma-4-style vocabulary
// (every Gemma 4 chat/tool/thinking marker, 256 byte tokens, printable ASCII and BPE merges trained on a
// built-in English text), or a copy of the tokenizer of another GGUF (the real Gemma 4 vocabulary).
#pragma once
#include <string>

#include "gguf/reader.h"
#include "gguf/writer.h"

namespace hearth::tokenizer {

enum class ToyKind { Bpe, Spm };  // "gemma4" merges-based BPE, or a "llama" SentencePiece vocabulary

// Writes tokenizer.* keys for a toy vocabulary of n_vocab tokens (padded with <unusedN>); returns n_vocab.
// Throws hearth::Error when n_vocab is too small to hold the fixed tokens.
int write_toy_vocab(gguf::Writer& w, int n_vocab, ToyKind kind);

// Copies every tokenizer.* key of `src` byte for byte; returns its number of tokens.
int copy_vocab(gguf::Writer& w, const gguf::File& src);

}  // namespace hearth::tokenizer
