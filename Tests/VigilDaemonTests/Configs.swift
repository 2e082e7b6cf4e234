/// Configuration texts the daemon tests share: the lvs01/lvs02 pair of etc/keepalived, with
/// knobs for what a test changes.
enum Configs {
    static func pair(priority: Int, vips: [String] = ["10.0.0.100/24"], extra: String = "", instanceExtra: String = "",
                     nopreempt: Bool = true, advert: Int = 1, script: Bool = false, vrid: Int = 77, name: String = "VI_1",
                     globals: String = "") -> String {
        """
        global_defs {
            router_id test
            enable_script_security
            script_user nobody
            \(globals)
        }
        \(script ? """
        vrrp_script chk {
            script "/etc/keepalived/check.sh"
            interval 1
            fall 2
            rise 2
            weight -10
        }
        """ : "")
        vrrp_instance \(name) {
            state BACKUP
            interface eth0
            virtual_router_id \(vrid)
            priority \(priority)
            \(nopreempt ? "nopreempt" : "")
            advert_int \(advert)
            authentication {
                auth_type PASS
                auth_pass 11111
            }
            virtual_ipaddress {
                \(vips.joined(separator: "\n        "))
            }
            \(script ? "track_script {\n        chk\n    }" : "")
            notify "/etc/keepalived/notify.sh"
            \(instanceExtra)
        }
        \(extra)
        """
    }
}
