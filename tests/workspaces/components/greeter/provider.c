#include "provider.h"
uint32_t exports_demo_greeter_greet_hello(uint32_t n) { return n * 2; }
