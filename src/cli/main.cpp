#include <cstdio>

int main() {
  std::printf("stack %s\n", STACK_VERSION);
  return 0;
}
