// The real NftRunner, through libnftables 1.0.6: the only file that includes it. A command
// buffer is one netlink batch, hence one transaction: all of it applies or none.
#include <nftables/libnftables.h>

#include <string>

#include "net/firewall.h"

namespace stack::net {
namespace {

class LibNftables final : public NftRunner {
 public:
  explicit LibNftables(nft_ctx* ctx) : ctx_(ctx) {}
  ~LibNftables() override { nft_ctx_free(ctx_); }
  LibNftables(const LibNftables&) = delete;
  LibNftables& operator=(const LibNftables&) = delete;

  Result<std::string> run(std::string_view commands, bool with_handles) override {
    unsigned flags = nft_ctx_output_get_flags(ctx_);
    nft_ctx_output_set_flags(
        ctx_, with_handles ? (flags | NFT_CTX_OUTPUT_HANDLE) : (flags & ~NFT_CTX_OUTPUT_HANDLE));
    std::string buf(commands);
    int rc = nft_run_cmd_from_buffer(ctx_, buf.c_str());
    std::string out = nft_ctx_get_output_buffer(ctx_);
    std::string err = nft_ctx_get_error_buffer(ctx_);
    if (rc != 0) {
      while (!err.empty() && err.back() == '\n') err.pop_back();
      // nft's own message carries the errno text ("No such file or directory").
      int code = err.find("No such file or directory") != std::string::npos ? ENOENT : EIO;
      return fail("nft: " + (err.empty() ? std::string("failed") : err), code);
    }
    return out;
  }

 private:
  nft_ctx* ctx_;
};

}  // namespace

Result<std::unique_ptr<NftRunner>> make_libnftables() {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return fail("nft: cannot create a context", ENOMEM);
  if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
    nft_ctx_free(ctx);
    return fail("nft: cannot buffer output");
  }
  return std::unique_ptr<NftRunner>(std::make_unique<LibNftables>(ctx));
}

}  // namespace stack::net
