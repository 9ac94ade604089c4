# Condenses `ptxas -v` output into one line per kernel and arch (used by the Makefile).
/Compiling entry function/ {
    kernel = $0; sub(/.*function '/, "", kernel); sub(/'.*/, "", kernel)
    arch = $0; sub(/.*for '/, "", arch); sub(/'.*/, "", arch)
    name = kernel
    if (kernel ~ /moe_gemm_sm80/) name = "moe_gemm_sm80"; else if (kernel ~ /moe_gemm_sm90/) name = "moe_gemm_sm90"
    if (kernel ~ /KindE0E/) name = name "<GateUp>"; else if (kernel ~ /KindE1E/) name = name "<Down>"
}
/bytes stack frame/ { stack = $1; stores = $5; loads = $9 }
/Used [0-9]+ registers/ {
    regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
    smem = "0"; if ($0 ~ /bytes smem/) { smem = $0; sub(/ bytes smem.*/, "", smem); sub(/.* /, "", smem) }
    flag = (stores + 0 > 0 || loads + 0 > 0 || stack + 0 > 0) ? "  SPILL" : ""
    printf "%-7s %-22s %3s registers  %s B static smem  %s B stack  %s B spill stores  %s B spill loads%s\n", arch, name, regs, smem, stack, stores, loads, flag
}
