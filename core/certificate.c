/* placeholder: certificate.c is being written (issue 3) */
