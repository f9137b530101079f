import {userInfo} from 'node:os'

/** The user running hpc-annex: the Owner of their jobs, and the <user> of <user>@<domain> identities. */
export function currentUser(): string {
  return userInfo().username
}
