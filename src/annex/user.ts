export {currentUser} from '../condor/user.js'
