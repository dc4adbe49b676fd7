import sys

from index_proxy.cli import main

sys.exit(main())
