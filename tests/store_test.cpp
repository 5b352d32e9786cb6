// The model store: references, hostile names, manifests that try to escape, verified publish, import
// (hard link), list/show/rm with shared blobs.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "run_command.h"
#include "store/reference.h"
#include "store/remote.h"
#include "store/sha256.h"
#include "store/store.h"
#include "test_data.h"

namespace {

namespace fs = std::filesystem;
using hearth::Error;
using hearth::store::parse_reference;
using hearth::store::RefKind;
using hearth::test::run_command;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("hearth-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }
  fs::path operator/(const std::string& s) const { return path_ / s; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

void write_file(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}
std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(StoreReference, Kinds) {
  auto r = parse_reference("hf.co/ggml-org/gemma-4-E2B-it-GGUF:Q8_0");
  EXPECT_EQ(r.kind, RefKind::HuggingFace);
  EXPECT_EQ(r.repo_path(), "ggml-org/gemma-4-E2B-it-GGUF");
  EXPECT_EQ(r.tag, "Q8_0");
  EXPECT_EQ(parse_reference("huggingface.co/a/b").tag, "Q4_K_M");
  EXPECT_EQ(parse_reference("https://hf.co/a/b").canonical(), "hf.co/a/b:Q4_K_M");

  r = parse_reference("ai/gemma4:e2b");
  EXPECT_EQ(r.kind, RefKind::Oci);
  EXPECT_EQ(r.host, "registry-1.docker.io");
  EXPECT_EQ(r.repo_path(), "ai/gemma4");
  EXPECT_EQ(r.tag, "e2b");
  EXPECT_FALSE(r.ollama);

  r = parse_reference("llama3.2:1b");  // not an alias: the Ollama registry
  EXPECT_EQ(r.host, "registry.ollama.ai");
  EXPECT_EQ(r.repo_path(), "library/llama3.2");
  EXPECT_TRUE(r.ollama);
  r = parse_reference("localhost:5000/ns/model");
  EXPECT_EQ(r.host, "localhost:5000");
  EXPECT_EQ(r.tag, "latest");
  EXPECT_EQ(parse_reference("./x.gguf").kind, RefKind::Path);
  EXPECT_EQ(parse_reference("/abs/x.gguf").kind, RefKind::Path);
  EXPECT_EQ(parse_reference("local/mine:v2").host, "local");
}

TEST(StoreReference, AliasesFromTheTableAndTheEditableFile) {
  TempDir t;
  ::setenv("HEARTH_MODELS", t.str().c_str(), 1);
  auto r = parse_reference("gemma4:e2b");
  EXPECT_EQ(r.kind, RefKind::HuggingFace);
  EXPECT_EQ(r.alias, "gemma4:e2b");
  EXPECT_NE(r.repo_path().find("E2B"), std::string::npos);
  for (const char* a : {"gemma4:e4b", "gemma4:26b", "gemma4:31b"})
    EXPECT_EQ(parse_reference(a).kind, RefKind::HuggingFace) << a;
  write_file(t / "aliases.txt", "# mirror\ngemma4:e2b  hf.co/mirror/e2b-gguf:Q8_0\nmine hf.co/me/mine\n");
  r = parse_reference("gemma4:e2b");
  EXPECT_EQ(r.canonical(), "hf.co/mirror/e2b-gguf:Q8_0");
  EXPECT_EQ(parse_reference("mine").canonical(), "hf.co/me/mine:Q4_K_M");
  ::unsetenv("HEARTH_MODELS");
}

TEST(StoreReference, HostileNamesAreRejected) {
  const std::string nul("ai/gem\0ma:e2b", 13);
  for (const std::string& bad :
       {std::string("hf.co/../etc"), std::string("hf.co/org/.."), std::string("hf.co/org/repo:../../x"),
        std::string("ai/../../etc/passwd:x"), std::string("ai/gemma4:..")
        , std::string("..\\..\\windows"), nul, std::string("hf.co/org/repo/extra"),
        std::string("ai//gemma4"), std::string("ai/gemma4:"), std::string("ai/.hidden:x"),
        std::string("ai/-rf:x"), std::string("ai/a b:x"), std::string(200, 'a') + "/x"}) {
    EXPECT_THROW(parse_reference(bad), Error) << bad;
  }
  EXPECT_THROW(hearth::store::validate_repo_file("/etc/passwd"), Error);
  EXPECT_THROW(hearth::store::validate_repo_file("a/../../b.gguf"), Error);
  EXPECT_THROW(hearth::store::validate_repo_file("a\\b.gguf"), Error);
  EXPECT_NO_THROW(hearth::store::validate_repo_file("sub/model-Q4_K_M-00001-of-00002.gguf"));
  EXPECT_THROW(hearth::store::digest_hex("sha256:../../../etc/passwd"), Error);
  EXPECT_THROW(hearth::store::digest_hex("sha256:" + std::string(64, 'A')), Error);
  EXPECT_EQ(hearth::store::digest_hex("sha256:" + std::string(64, 'a')), std::string(64, 'a'));
}

TEST(StoreReference, QuantAndSplitFileNames) {
  using hearth::store::quant_in_name;
  EXPECT_EQ(quant_in_name("gemma-4-E2B-it-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(quant_in_name("Q8_0/gemma-4-31B-it-Q8_0-00001-of-00002.gguf"), "Q8_0");
  EXPECT_EQ(quant_in_name("model.q4_k_s.gguf"), "Q4_K_S");
  EXPECT_EQ(quant_in_name("model-IQ4_XS.gguf"), "IQ4_XS");  // not Q4_... inside IQ4_XS
  EXPECT_EQ(quant_in_name("model-UD-Q4_K_XL.gguf"), "Q4_K_XL");
  EXPECT_EQ(quant_in_name("model_BF16.gguf"), "BF16");
  EXPECT_EQ(quant_in_name("model.gguf"), "");
  auto sp = hearth::store::parse_split_name("dir/m-Q8_0-00002-of-00005.gguf");
  ASSERT_TRUE(sp.has_value());
  EXPECT_EQ(sp->prefix, "dir/m-Q8_0");
  EXPECT_EQ(sp->index, 2);
  EXPECT_EQ(sp->count, 5);
  EXPECT_FALSE(hearth::store::parse_split_name("m-00006-of-00005.gguf").has_value());
  EXPECT_FALSE(hearth::store::parse_split_name("m-0000a-of-00005.gguf").has_value());
  EXPECT_FALSE(hearth::store::parse_split_name("m.gguf").has_value());
}

TEST(StoreBlobs, PublishVerifiesTheDigest) {
  TempDir t;
  hearth::store::Store s(t.str());
  write_file(t / "in.partial", "hello");
  const std::string good = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
  const std::string bad = "sha256:" + std::string(64, '0');
  EXPECT_THROW(s.publish((t / "in.partial").string(), bad), Error);
  EXPECT_FALSE(fs::exists(t / "in.partial"));  // bad data discarded
  EXPECT_FALSE(s.has_blob(bad));
  write_file(t / "in.partial", "hello");
  s.publish((t / "in.partial").string(), good);
  EXPECT_TRUE(s.has_blob(good));
  EXPECT_EQ(read_file(s.blob_path(good)), "hello");
  EXPECT_EQ(s.blob_path(good), t.str() + "/blobs/sha256-" + good.substr(7));
}

TEST(StoreManifests, HostileManifestsAreRejectedAndNeverFollowed) {
  TempDir t;
  hearth::store::Store s(t.str());
  write_file(t / "secret", "do not touch");
  const auto ref = parse_reference("ai/gemma4:e2b");
  const fs::path mp = s.manifest_path(ref);
  EXPECT_EQ(mp.string(), t.str() + "/manifests/registry-1.docker.io/ai/gemma4/e2b.json");
  // A digest that walks out of blobs/.
  write_file(mp, R"({"reference":"registry-1.docker.io/ai/gemma4:e2b","files":[{"role":"model","name":"m.gguf",
                     "digest":"sha256:../../secret","size":1}]})");
  EXPECT_THROW(s.read_manifest(ref), Error);
  // An absolute file name, a NUL byte, a traversal in the role.
  write_file(mp, R"({"reference":"registry-1.docker.io/ai/gemma4:e2b","files":[{"role":"model","name":"/etc/passwd",
                     "digest":"sha256:)" + std::string(64, 'a') + R"(","size":1}]})");
  EXPECT_THROW(s.read_manifest(ref), Error);
  write_file(mp, R"({"reference":"registry-1.docker.io/ai/gemma4:e2b","files":[{"role":"../x","name":"a\u0000b",
                     "digest":"sha256:)" + std::string(64, 'a') + R"(","size":1}]})");
  EXPECT_THROW(s.read_manifest(ref), Error);
  // A manifest claiming another reference than its location is skipped by list; rm of it never touches secret.
  write_file(mp, R"({"reference":"registry-1.docker.io/ai/other:e2b","files":[{"role":"model","name":"m.gguf",
                     "digest":"sha256:)" + std::string(64, 'a') + R"(","size":1}]})");
  EXPECT_TRUE(s.list().empty());
  write_file(t / "manifests/x.json", "not json");
  EXPECT_TRUE(s.list().empty());
  s.gc();
  EXPECT_EQ(read_file(t / "secret"), "do not touch");
  // Hand-built references with bad components are refused too.
  hearth::store::Reference r;
  r.kind = RefKind::Oci;
  r.host = "..";
  r.repo = {"x"};
  r.tag = "y";
  EXPECT_THROW(s.manifest_path(r), Error);
  r.host = "h";
  r.repo = {"/etc"};
  EXPECT_THROW(s.manifest_path(r), Error);
}

TEST(StoreCli, ImportHardLinksListShowRemoveWithSharedBlobs) {
  TempDir t;
  const std::string hearth = hearth::test::hearth_binary();
  const std::string env = "HEARTH_MODELS=" + t.str() + "/store OLLAMA_MODELS=/nonexistent HF_HUB_CACHE=/nonexistent ";
  const std::string model = (t / "tiny.gguf").string();
  auto r = run_command(hearth + " synth --preset tiny-dense -q -o " + model);
  ASSERT_EQ(r.status, 0) << r.output;

  r = run_command(env + hearth + " import " + model);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("local/tiny:latest"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hard link"), std::string::npos) << r.output;
  hearth::store::Store s(t.str() + "/store");
  const auto m = s.find("tiny");
  ASSERT_TRUE(m.has_value());
  struct stat a {}, b {};
  ASSERT_EQ(::stat(model.c_str(), &a), 0);
  ASSERT_EQ(::stat(s.model_path(*m).c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // no copy
  EXPECT_EQ("sha256:" + hearth::store::sha256_file(model), m->manifest.files[0].digest);

  r = run_command(env + hearth + " import " + model + " --name other:v2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("already stored"), std::string::npos) << r.output;

  r = run_command(env + hearth + " list --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "local/other:v2");
  EXPECT_EQ(j[1]["name"], "local/tiny:latest");
  EXPECT_EQ(j[1]["quant"], "F32");
  EXPECT_EQ(j[1]["size"].get<uint64_t>(), fs::file_size(model));

  r = run_command(env + hearth + " show tiny");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("general.architecture: gemma4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("memory plan"), std::string::npos);
  EXPECT_NE(r.output.find("fits:"), std::string::npos);

  // rm of one name keeps the blob the other still uses; rm of the last frees it.
  r = run_command(env + hearth + " rm tiny");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(s.blob_path(m->manifest.files[0].digest)));
  r = run_command(env + hearth + " rm local/other:v2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(fs::exists(s.blob_path(m->manifest.files[0].digest)));
  EXPECT_TRUE(fs::exists(model));  // the user's file is untouched

  r = run_command(env + hearth + " rm tiny");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not in the store"), std::string::npos) << r.output;
  r = run_command(env + hearth + " rm ../../etc");
  EXPECT_EQ(r.status, 1);
  r = run_command(env + hearth + " import " + model + " --name ../evil");
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(fs::exists(t / "evil"));
  r = run_command(env + hearth + " import " + (t / "missing.gguf").string());
  EXPECT_EQ(r.status, 1);
}

TEST(StoreDiscover, OllamaStoreAndHuggingFaceCacheAreOfferedInPlace) {
  TempDir t;
  const std::string hearth = hearth::test::hearth_binary();
  const std::string model = (t / "tiny.gguf").string();
  auto r = run_command(hearth + " synth --preset tiny-dense -q -o " + model);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string hex = hearth::store::sha256_file(model);
  // Ollama: manifests/<host>/<ns>/<model>/<tag> -> blobs/sha256-<hex>
  const fs::path ol = t / "ollama";
  fs::create_directories(ol / "blobs");
  fs::create_hard_link(model, ol / "blobs" / ("sha256-" + hex));
  write_file(ol / "manifests/registry.ollama.ai/library/tiny/latest",
             R"({"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" +
                 hex + R"(","size":1}]})");
  write_file(ol / "manifests/registry.ollama.ai/library/evil/latest",  // hostile: ignored
             R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../../../tiny.gguf"}]})");
  // Hugging Face cache: snapshots/<rev>/<file> is a symlink into blobs/.
  const fs::path hf = t / "hf";
  const fs::path repo = hf / "models--org--tiny-GGUF";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots/0123abcd");
  fs::copy_file(model, repo / "blobs" / hex);
  fs::create_symlink("../../blobs/" + hex, repo / "snapshots/0123abcd/tiny-F32.gguf");
  const std::string env = "HEARTH_MODELS=" + t.str() + "/store OLLAMA_MODELS=" + ol.string() + " HF_HUB_CACHE=" +
                          hf.string() + " ";

  r = run_command(env + hearth + " list --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 2u) << r.output;
  EXPECT_EQ(j[0]["name"], "ollama/library/tiny:latest");
  EXPECT_EQ(j[0]["source"], "ollama");
  EXPECT_EQ(j[1]["name"], "hf-cache/org/tiny-GGUF/tiny-F32.gguf");
  EXPECT_EQ(j[1]["quant"], "F32");
  r = run_command(env + hearth + " list");
  EXPECT_NE(r.output.find("found elsewhere"), std::string::npos) << r.output;

  // fit reads them in place; import hard-links them into the store.
  r = run_command(env + hearth + " fit ollama/library/tiny:latest --json --ctx 64");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["plan"]["ctx"], 64);
  r = run_command(env + hearth + " fit hf-cache/org/tiny-GGUF/tiny-F32.gguf --ctx 64");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_command(env + hearth + " show hf-cache/org/tiny-GGUF/tiny-F32.gguf");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("used in place"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("memory plan"), std::string::npos) << r.output;
  r = run_command(env + hearth + " import ollama/library/tiny:latest");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("hard link"), std::string::npos) << r.output;
  hearth::store::Store s(t.str() + "/store");
  auto m = s.find("tiny:latest");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(fs::hard_link_count(model), 3u);  // the file, Ollama's blob, hearth's blob: one copy on disk
}

}  // namespace
