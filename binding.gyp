{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["native/berth.cc", "native/dns-udp.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "berth-launcher",
      "type": "executable",
      "sources": ["native/launcher.c"],
      "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra"],
      "cflags!": ["-fno-exceptions"],
      "ldflags": []
    }
  ]
}
