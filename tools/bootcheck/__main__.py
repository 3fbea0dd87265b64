import sys

from tools.bootcheck.reference import main

sys.exit(main())
